public import Prometheus
import Synchronization

/// Every Prometheus metric kiam exposes, defined once, with kiam's names, labels and buckets
/// (uswitch/kiam v4 `docs/METRICS.md`), so existing dashboards and alerts keep working.
///
/// One instance per process; pass it to the parts that record. The label-less `kiam_*` families
/// exist in every process (showing 0 where unused), as in Go kiam.
public final class KiamMetrics: Sendable {
  /// The registry everything is recorded in.
  public let registry: PrometheusCollectorRegistry

  /// kiam's latency buckets: 1 ms × 2ⁿ for n = 0…12 (1 ms … 4.096 s).
  public static let latencyBuckets: [Duration] = (0...12).map { .microseconds(1000 << $0) }

  // MARK: Agent (metadata API)
  public let proxyRequestsBlocked: Counter

  // MARK: Server (STS cache)
  public let stsCacheSize: Gauge
  public let stsCacheHit: Counter
  public let stsCacheMiss: Counter
  public let stsIssuingErrors: Counter
  public let stsAssumeRoleTiming: DurationHistogram
  public let stsAssumeRoleCurrent: Gauge
  public let k8sDroppedPods: Counter
  private let handlerLatencies = Mutex<[ShardedDurationHistogram]>([])

  public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
    self.registry = registry
    proxyRequestsBlocked = registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "metadata", metricName: "proxy_requests_blocked", unitName: "total",
        helpText: "Number of access requests to the proxy handler that were blocked by the regexp"))
    stsCacheSize = registry.makeGauge(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "cacheSize", unitName: "",
        helpText: "Current size of the metadata cache"))
    stsCacheHit = registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "cache_hit", unitName: "total",
        helpText: "Number of cache hits to the metadata cache"))
    stsCacheMiss = registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "cache_miss", unitName: "total",
        helpText: "Number of cache misses to the metadata cache"))
    stsIssuingErrors = registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "issuing_errors", unitName: "total",
        helpText: "Number of errors issuing credentials"))
    stsAssumeRoleTiming = registry.makeDurationHistogram(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "assumerole_timing", unitName: "seconds",
        helpText: "Bucketed histogram of assumeRole timings"),
      buckets: Self.latencyBuckets)
    stsAssumeRoleCurrent = registry.makeGauge(
      descriptor: .init(
        namespace: "kiam", subsystem: "sts", metricName: "assumerole_current", unitName: "",
        helpText: "Number of assume role calls currently executing"))
    k8sDroppedPods = registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "k8s", metricName: "dropped_pods", unitName: "total",
        helpText: "Number of dropped pods because of full buffer"))
  }

  // MARK: Labelled families (series appear when first used)

  /// `kiam_metadata_handler_latency_seconds{handler}`: recorded on every metadata request from
  /// every event loop, so it is a ``ShardedDurationHistogram`` (no lock shared between threads).
  /// The same handler always gets the same series.
  public func handlerLatency(_ handler: String) -> ShardedDurationHistogram {
    handlerLatencies.withLock { series in
      if let known = series.first(where: { $0.labels.first?.1 == handler }) { return known }
      let made = ShardedDurationHistogram(
        name: Self.handlerLatencyName, labels: [("handler", handler)], buckets: Self.latencyBuckets)
      series.append(made)
      return made
    }
  }

  static let handlerLatencyName = "kiam_metadata_handler_latency_seconds"

  /// Everything in the Prometheus text format: the registry, then the sharded histograms.
  public func emit(into buffer: inout [UInt8]) {
    registry.emit(into: &buffer)
    let latencies = handlerLatencies.withLock { $0 }
    guard !latencies.isEmpty else { return }
    buffer.append(contentsOf: "# HELP \(Self.handlerLatencyName) Bucketed histogram of handler timings\n".utf8)
    buffer.append(contentsOf: "# TYPE \(Self.handlerLatencyName) histogram\n".utf8)
    for series in latencies { series.emit(into: &buffer) }
  }

  /// ``emit(into:)`` as a string.
  public func emitToString() -> String {
    var bytes: [UInt8] = []
    emit(into: &bytes)
    return String(decoding: bytes, as: UTF8.self)
  }

  /// `kiam_metadata_credential_fetch_errors_total{handler}`.
  public func credentialFetchErrors(_ handler: String) -> Counter {
    handlerCounter("credential_fetch_errors", "Number of errors fetching the credentials for a pod", handler)
  }

  /// `kiam_metadata_credential_encode_errors_total{handler}`.
  public func credentialEncodeErrors(_ handler: String) -> Counter {
    handlerCounter("credential_encode_errors", "Number of errors encoding credentials for a pod", handler)
  }

  /// `kiam_metadata_find_role_errors_total{handler}`.
  public func findRoleErrors(_ handler: String) -> Counter {
    handlerCounter("find_role_errors", "Number of errors finding the role for a pod", handler)
  }

  /// `kiam_metadata_empty_role_total{handler}`.
  public func emptyRole(_ handler: String) -> Counter {
    handlerCounter("empty_role", "Number of empty roles returned", handler)
  }

  /// `kiam_metadata_success_total{handler}`.
  public func success(_ handler: String) -> Counter {
    handlerCounter("success", "Number of successful responses from a handler", handler)
  }

  /// `kiam_metadata_responses_total{handler,code}`.
  public func responses(_ handler: String, code: Int) -> Counter {
    registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "metadata", metricName: "responses", unitName: "total",
        helpText: "Responses from mocked out metadata handlers"),
      labels: [("handler", handler), ("code", String(code))])
  }

  private func handlerCounter(_ name: String, _ help: String, _ handler: String) -> Counter {
    registry.makeCounter(
      descriptor: .init(namespace: "kiam", subsystem: "metadata", metricName: name, unitName: "total", helpText: help),
      labels: [("handler", handler)])
  }

  // MARK: TLS

  /// Which side of a TLS connection a set of gauges describes (`grpc_client_…` / `grpc_server_…`).
  public enum TLSSide: String, Sendable {
    case client
    case server
  }

  /// The TLS gauges of one side: `grpc_<side>_tls_certificate_{update_error,verify_error,expiry_seconds}`.
  public struct TLSGauges: Sendable {
    /// 1 while the last reload of the certificate files failed.
    public let updateError: Gauge
    /// 1 when our own chain does not verify against our CA with our EKU.
    public let verifyError: Gauge
    /// Earliest NotAfter of our certificates (Unix seconds).
    public let expirySeconds: Gauge
  }

  /// The TLS gauges for `side`.
  public func tls(_ side: TLSSide) -> TLSGauges {
    let prefix = "grpc_\(side.rawValue)_tls_certificate"
    return TLSGauges(
      updateError: registry.makeGauge(
        descriptor: .init(
          metricName: "\(prefix)_update_error", unitName: "",
          helpText: "Indicates an error updating the TLS certificate: 1 when the last reload failed")),
      verifyError: registry.makeGauge(
        descriptor: .init(
          metricName: "\(prefix)_verify_error", unitName: "",
          helpText: "Indicates an error verifying the TLS certificate chain: 1 when verification failed")),
      expirySeconds: registry.makeGauge(
        descriptor: .init(
          metricName: "\(prefix)_expiry_seconds", unitName: "",
          helpText: "Earliest expiry of the TLS certificate chain, in Unix seconds")))
  }

  // MARK: gRPC (go-grpc-prometheus names)

  /// The counters of one RPC method on one side, as go-grpc-prometheus names them.
  public struct GRPCMethodCounters: Sendable {
    public let started: Counter
    public let messagesReceived: Counter
    public let messagesSent: Counter
    fileprivate let handledFamily: @Sendable (String) -> Counter

    /// `grpc_<side>_handled_total` for the given gRPC code name (`OK`, `Unknown`, …).
    public func handled(code: String) -> Counter { handledFamily(code) }
  }

  /// Counters for a unary method, e.g. `GRPCMethod(service: "kiam.KiamService", method: "GetHealth")`.
  public func grpc(_ side: TLSSide, service: String, method: String, type: String = "unary") -> GRPCMethodCounters {
    let labels = [("grpc_type", type), ("grpc_service", service), ("grpc_method", method)]
    let s = side.rawValue
    let registry = self.registry
    func counter(_ name: String, _ help: String, _ extra: [(String, String)] = []) -> Counter {
      registry.makeCounter(
        descriptor: .init(metricName: "grpc_\(s)_\(name)", unitName: "total", helpText: help), labels: labels + extra)
    }
    return GRPCMethodCounters(
      started: counter(
        side == .server ? "started" : "started",
        side == .server ? "Total number of RPCs started on the server." : "Total number of RPCs started on the client."),
      messagesReceived: counter(
        "msg_received",
        side == .server
          ? "Total number of RPC stream messages received on the server."
          : "Total number of RPC stream messages received by the client."),
      messagesSent: counter(
        "msg_sent",
        side == .server
          ? "Total number of gRPC stream messages sent by the server."
          : "Total number of gRPC stream messages sent by the client."),
      handledFamily: { code in
        registry.makeCounter(
          descriptor: .init(
            metricName: "grpc_\(s)_handled", unitName: "total",
            helpText: side == .server
              ? "Total number of RPCs completed on the server, regardless of success or failure."
              : "Total number of RPCs completed by the client, regardless of success or failure."),
          labels: labels + [("grpc_code", code)])
      })
  }
}
