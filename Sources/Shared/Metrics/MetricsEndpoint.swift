public import Logging
import NIOCore
public import ServiceLifecycle
import Synchronization

/// `--prometheus-listen-addr`: serves `/metrics`, and never stops the process when it cannot.
///
/// kiam's manifests run the server and the agent on the masters, both with host network and
/// `--prometheus-listen-addr=0.0.0.0:9620`, so one of them cannot bind. Go kiam ignored the bind
/// error; exiting would crash-loop every master. Here the credentials path never depends on the
/// metrics listener: a bind failure is logged once, the listener is retried every
/// `retryInterval`, and ``status`` says why metrics are missing (the agent's `/health?deep` and
/// the server's `GetHealth` report it). Once the port is free it is taken.
public final class MetricsEndpoint: Service, Sendable {
  /// Whether metrics are being served.
  public enum Status: Sendable, Equatable {
    /// Not bound yet (the first attempt is under way).
    case starting
    /// Listening on this address.
    case serving(String)
    /// Cannot listen; retried in the background.
    case unavailable(String)

    /// A warning for health answers, nil while metrics are served (or about to be).
    public var warning: String? {
      guard case .unavailable(let reason) = self else { return nil }
      return "metrics endpoint down: \(reason)"
    }
  }

  public let address: HostPort
  private let metrics: KiamMetrics
  private let logger: Logger
  private let retryInterval: Duration
  private let state = Mutex<Status>(.starting)

  public init(address: HostPort, metrics: KiamMetrics, logger: Logger, retryInterval: Duration = .seconds(5)) {
    self.address = address
    self.metrics = metrics
    self.logger = logger
    self.retryInterval = retryInterval
  }

  public var status: Status { state.withLock { $0 } }

  public func run() async throws {
    var lastFailure: String?
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
      let server = HTTPServer(
        configuration: .init(host: address.host, port: address.port), handler: MetricsHandler(metrics: metrics),
        logger: logger)
      let outcome: Result<Void, any Error> = await withTaskGroup(of: Result<Void, any Error>?.self) { group in
        group.addTask {
          guard let bound = try? await server.listeningAddress else { return nil }
          self.state.withLock { $0 = .serving("\(bound)") }
          self.logger.info("serving metrics", metadata: ["address": "\(self.address)"])
          return nil
        }
        group.addTask {
          do {
            try await server.run()
            return .success(())
          } catch {
            return .failure(error)
          }
        }
        var outcome: Result<Void, any Error> = .success(())
        for await result in group { if let result { outcome = result } }
        return outcome
      }
      guard case .failure(let error) = outcome else { return }  // served until shutdown
      let reason = "cannot listen on \(address): \(Self.cause(error))"
      state.withLock { $0 = .unavailable("\(reason) (retrying every \(GoDuration.format(retryInterval)))") }
      if reason != lastFailure {
        logger.error(
          "metrics endpoint unavailable, serving credentials without it",
          metadata: [
            "address": "\(address)", "error": "\(Self.cause(error))", "retry": "\(GoDuration.format(retryInterval))",
          ])
        lastFailure = reason
      }
      try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.retryInterval) }
    }
  }

  /// The innermost reason (`bind(descriptor:ptr:bytes:): Address already in use (errno: 98)`).
  private static func cause(_ error: any Error) -> String {
    if let kiam = error as? KiamError, let cause = kiam.cause { return KiamError.describe(cause) }
    return KiamError.describe(error)
  }
}
