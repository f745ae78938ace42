public import GRPCCore
import GRPCNIOTransportHTTP2
public import Logging

/// `kiam health`: asks a kiam server for `GetHealth` over mutual TLS, like Go kiam's probe.
///
/// The server must be reached within `connectTimeout` (`--gateway-timeout-creation`); then
/// `GetHealth` is retried every 100 ms until it succeeds or `timeout` (`--timeout`) passes.
public enum HealthProbe {
  /// Runs the probe.
  /// - Returns: The server's health message (`ok`).
  /// - Throws: ``KiamError`` with the last error when the server is unreachable or unhealthy.
  public static func run(_ configuration: HealthProbeConfiguration, logger: Logger) async throws -> String {
    let store = try await TLSMaterialStore(files: configuration.tls, role: .client, metrics: nil, logger: logger)
    let transport = try KiamTransports.client(
      server: configuration.serverAddress, store: store, settings: configuration.connection)
    return try await withGRPCClient(transport: transport) { client in
      try await probe(Kiam_KiamService.Client(wrapping: client), configuration: configuration, logger: logger)
    }
  }

  static func probe<Transport: ClientTransport>(
    _ client: Kiam_KiamService.Client<Transport>, configuration: HealthProbeConfiguration, logger: Logger
  ) async throws -> String {
    let clock = ContinuousClock()
    let start = clock.now
    var connected = false
    var connectedAt = start
    var lastError: any Error = KiamError(code: .timeout, message: "context deadline exceeded")
    while true {
      let deadline = connected ? connectedAt + configuration.timeout : start + configuration.connectTimeout
      let remaining = clock.now.duration(to: deadline)
      if remaining <= .zero { break }
      var options = CallOptions.defaults
      options.timeout = remaining
      options.waitForReady = !connected
      do {
        let (message, warnings) = try await client.getHealth(Kiam_GetHealthRequest(), options: options) { response in
          (try response.message.message, HealthMetadataKeys.warnings(in: response.metadata))
        }
        if message == "ok" {
          // Healthy (the probe passes), but say what the server reports as degraded.
          for warning in warnings { logger.warning("server warning: \(warning)") }
          return message
        }
        lastError = KiamError(code: .upstream, message: "server health: \(message)")
      } catch let error as RPCError {
        lastError = error
        // Any answer from the server (not a transport failure) means the connection is up.
        if !connected, ![.unavailable, .deadlineExceeded, .cancelled].contains(error.code) {
          connected = true
          connectedAt = clock.now
        }
        logger.warning("error checking health: \(error.goDescription)")
      } catch {
        lastError = error
        logger.warning("error checking health: \(KiamError.describe(error))")
      }
      if clock.now.duration(to: deadline) > .milliseconds(100) {
        try await Task.sleep(for: .milliseconds(100))
      } else {
        break
      }
    }
    let detail = (lastError as? RPCError)?.goDescription ?? KiamError.describe(lastError)
    if !connected {
      throw KiamError(code: .upstream, message: "error creating server gateway: error dialing grpc server: \(detail)")
    }
    throw KiamError(code: .upstream, message: "error retrieving health: \(detail)")
  }
}
