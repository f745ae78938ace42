import KiamShared
import Prometheus

/// Counters of the Kubernetes watches: `kiam_k8s_relists_total`, `kiam_k8s_watch_restarts_total`,
/// `kiam_k8s_watch_errors_total`, each by `resource`.
struct ReflectorMetrics: Sendable {
  let metrics: KiamMetrics

  private func counter(_ name: String, _ help: String, _ resource: String) -> Counter {
    metrics.registry.makeCounter(
      descriptor: .init(namespace: "kiam", subsystem: "k8s", metricName: name, unitName: "total", helpText: help),
      labels: [("resource", resource)])
  }

  func relisted(_ resource: String) { counter("relists", "Full lists of a resource", resource).increment() }
  func watchEnded(_ resource: String) {
    counter("watch_restarts", "Watch streams that ended and were resumed", resource).increment()
  }
  func failed(_ resource: String) { counter("watch_errors", "Failed list or watch calls", resource).increment() }
}
