import GRPCCore
import GRPCNIOTransportHTTP2
public import KiamShared
public import Logging
import ServiceLifecycle
import UnixSignals

/// Assembles and runs `kiam server`: every long-running part is a `Service` in one
/// `ServiceGroup`, which SIGTERM and SIGINT drain.
public struct ServerApplication: Sendable {
  private let configuration: ServerConfiguration
  private let logger: Logger
  private let metrics: KiamMetrics

  public init(configuration: ServerConfiguration, logger: Logger, metrics: KiamMetrics = KiamMetrics()) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
  }

  /// Runs until SIGTERM/SIGINT (then drains in-flight RPCs and returns) or a fatal error.
  public func run() async throws {
    let store = try await TLSMaterialStore(files: configuration.tls, role: .server, metrics: metrics, logger: logger)
    let transport = try KiamTransports.server(bind: configuration.bind, store: store, settings: configuration.grpc)
    let server = GRPCServer(
      transport: transport,
      services: [KiamGRPCService()],
      interceptors: [MetricsServerInterceptor(metrics: metrics)])
    var services: [any Service] = [GRPCServerService(server: server), TLSReloadService(store: store)]
    if let address = configuration.prometheusListenAddress {
      services.append(
        HTTPServer(
          configuration: .init(host: address.host, port: address.port),
          handler: MetricsHandler(metrics: metrics), logger: logger))
    }
    let group = ServiceGroup(
      configuration: .init(
        services: services.map { .init(service: $0) },
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    do {
      try await group.run()
    } catch {
      throw KiamError(code: .internal, message: "server stopped", cause: error)
    }
  }
}
