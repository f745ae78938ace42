import KiamShared
import Prometheus

/// The agent's kiam_metadata_* series, the hot ones created once.
struct AgentMetrics: Sendable {
  let metrics: KiamMetrics
  let credentialsLatency: ShardedDurationHistogram
  let roleNameLatency: ShardedDurationHistogram
  let healthLatency: ShardedDurationHistogram
  let proxyLatency: ShardedDurationHistogram
  let credentialsOK: Counter
  let credentialsSuccess: Counter
  let roleNameOK: Counter
  let roleNameSuccess: Counter

  init(_ metrics: KiamMetrics) {
    self.metrics = metrics
    credentialsLatency = metrics.handlerLatency("credentials")
    roleNameLatency = metrics.handlerLatency("roleName")
    healthLatency = metrics.handlerLatency("health")
    proxyLatency = metrics.handlerLatency("proxy")
    credentialsOK = metrics.responses("credentials", code: 200)
    credentialsSuccess = metrics.success("credentials")
    roleNameOK = metrics.responses("roleName", code: 200)
    roleNameSuccess = metrics.success("roleName")
  }

  func latency(_ handler: String) -> ShardedDurationHistogram {
    switch handler {
    case "credentials": credentialsLatency
    case "roleName": roleNameLatency
    case "health": healthLatency
    default: proxyLatency
    }
  }

  /// `kiam_agent_<name>_total`, with `labels`.
  private func agentCounter(_ name: String, help: String, labels: [(String, String)] = []) -> Counter {
    metrics.registry.makeCounter(
      descriptor: .init(namespace: "kiam", subsystem: "agent", metricName: name, unitName: "total", helpText: help),
      labels: labels)
  }

  /// `kiam_agent_imds_token_rejected_total{reason, outcome}`: session tokens that did not check
  /// (`reason`: missing, invalid, expired, wrong_caller) and whether the request was refused (401,
  /// `--require-imdsv2`) or served as IMDSv1.
  func tokenRejected(reason: String, refused: Bool) -> Counter {
    agentCounter(
      "imds_token_rejected", help: "IMDSv2 session tokens that did not check, by reason and outcome",
      labels: [("reason", reason), ("outcome", refused ? "refused" : "served_as_v1")])
  }

  /// `kiam_agent_connections_refused_total{reason}` and `kiam_agent_connections_replaced_total`:
  /// connections the per-pod and total caps turned away or closed to make room.
  func connectionEvent(_ event: HTTPServer.ConnectionEvent) {
    switch event {
    case .refused(let reason):
      agentCounter(
        "connections_refused", help: "Connections refused at the per-pod (per_source) or total connection cap",
        labels: [("reason", reason)]
      ).increment()
    case .replaced:
      agentCounter("connections_replaced", help: "Idle connections closed to make room for a new one from the same pod")
        .increment()
    }
  }

  /// `kiam_agent_served_during_outage_total{handler}`: answered from the cache at once because
  /// no server answers (``ServerReachability``).
  func servedDuringOutage(_ handler: String) {
    agentCounter(
      "served_during_outage", help: "Requests answered from the cache at once while no kiam server answers",
      labels: [("handler", handler)]
    ).increment()
  }

  /// Records a response of `handler`.
  func responded(_ handler: String, code: Int, elapsed: Duration) {
    latency(handler).record(elapsed)
    switch (handler, code) {
    case ("credentials", 200):
      credentialsOK.increment()
      credentialsSuccess.increment()
    case ("roleName", 200):
      roleNameOK.increment()
      roleNameSuccess.increment()
    default:
      metrics.responses(handler, code: code).increment()
      if code == 200 { metrics.success(handler).increment() }
    }
  }
}
