import AsyncHTTPClient
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
public import KiamShared
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Assembles and runs `kiam agent`: one `ServiceGroup` that SIGTERM/SIGINT drains.
///
/// The agent starts and answers `/ping` without any server reachable (Go kiam exited when it
/// could not dial a server within 1 s, crash-looping nodes); server connections are made as needed
/// and re-resolved periodically.
public struct AgentApplication: Sendable {
  private let configuration: AgentConfiguration
  private let logger: Logger
  private let metrics: KiamMetrics
  private let clock: WallClock

  /// - Parameter clock: What credentials' expiry and tokens' lifetimes are compared with (tests
  ///   move a manual one).
  public init(
    configuration: AgentConfiguration, logger: Logger, metrics: KiamMetrics = KiamMetrics(), clock: WallClock = .system
  ) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
    self.clock = clock
  }

  public func run() async throws {
    let allowRoutes = try GoRegexp(configuration.allowRouteRegexp)
    let store = try await TLSMaterialStore(files: configuration.tls, role: .client, metrics: metrics, logger: logger)
    var resolvers = NameResolverRegistry.defaults
    resolvers.registerFactory(ServerAddressResolverFactory())
    let address = configuration.serverAddress
    let transport = try KiamTransports.client(
      server: address, store: store, settings: configuration.grpc,
      target: ServerAddressTarget(
        host: address.host.isEmpty ? "localhost" : address.host, port: address.port, refreshInterval: .seconds(15)),
      resolvers: resolvers)
    let grpcClient = GRPCClient(transport: transport)
    var server = KiamServerClient(
      client: Kiam_KiamService.Client(wrapping: grpcClient), metrics: metrics,
      tokenFile: configuration.nodeIdentityTokenFile)
    server.tls = store
    server.address = "\(configuration.serverAddress)"

    var httpConfiguration = HTTPClient.Configuration()
    httpConfiguration.timeout = .init(connect: .seconds(1), read: .seconds(2))
    httpConfiguration.httpVersion = .http1Only
    if configuration.metadataEndpoint.hasPrefix("https://") {
      // As every outbound TLS client: the roots a Go program would trust on this host.
      let roots = SystemTrustRoots.load(environment: ProcessInfo.processInfo.environment)
      httpConfiguration.tlsConfiguration = roots.clientConfiguration
      logger.info("trust roots for the metadata endpoint", metadata: ["system": "\(roots.summary)"])
    }
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfiguration)
    let upstream = InstanceMetadataClient(endpoint: configuration.metadataEndpoint, http: http)

    let cache = PodCredentialCache(source: server, clock: clock)
    let work = WorkQueue()
    let metricsEndpoint = configuration.prometheusListenAddress.map {
      MetricsEndpoint(address: $0, metrics: metrics, logger: logger)
    }
    let agentMetrics = AgentMetrics(metrics)
    let iptablesStatus = configuration.iptables ? IPTablesStatus() : nil
    var handler = MetadataHandler(
      settings: MetadataSettings(
        allowIPQuery: configuration.allowIPQuery, allowRoutes: allowRoutes, requireIMDSv2: configuration.requireIMDSv2,
        clock: clock),
      cache: cache, tokens: IMDSv2Tokens(store: store, host: configuration.host), server: server, upstream: upstream,
      work: work,
      metrics: agentMetrics, metricsEndpoint: metricsEndpoint, logger: logger)
    handler.iptables = iptablesStatus
    let listener = HTTPServer(
      configuration: HTTPServerConfiguration(
        host: "", port: configuration.port, maxConnectionsPerSource: configuration.maxConnectionsPerSource),
      handler: handler, logger: logger, events: { agentMetrics.connectionEvent($0) })

    // Started in this order, stopped in reverse: the listener drains first (its keep-alive
    // connections are closed while the rule still carries their packets, so pods see the close
    // and reconnect instead of sending on a dead connection), then the rule goes (the rule waits
    // for the listener before it is added), then the queued work and the server connections finish.
    var services: [any Service] = [
      GRPCClientService(client: grpcClient), TLSReloadService(store: store), work,
      CredentialRefreshService(cache: cache, logger: logger),
      ServerProbeService(server: server, reachability: server.reachability, logger: logger),
    ]
    if configuration.iptables {
      // Per node address (one per family): the redirect, then the rate limit.
      let rules = configuration.hosts.flatMap { host in
        let rule = IPTablesRule.forHost(host, interface: configuration.hostInterface, port: configuration.port)
        let perSecond = configuration.newConnectionsPerSecondPerSource
        return [rule] + (perSecond > 0 ? [rule.connectionRateLimit(perSecond: perSecond, burst: 2 * perSecond)] : [])
      }
      services.append(
        IPTablesService(
          rules: rules,
          backend: configuration.iptablesBackend, remove: configuration.iptablesRemove, listener: listener,
          logger: logger, metrics: metrics,
          recheckInterval: configuration.iptablesCheckInterval, status: iptablesStatus ?? IPTablesStatus()))
    }
    services += [listener, MemoryTrimService()]
    if let metricsEndpoint { services.append(metricsEndpoint) }
    let group = ServiceGroup(
      configuration: .init(
        services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
    logger.info(
      "kiam agent starting",
      metadata: [
        "port": "\(configuration.port)", "server": "\(configuration.serverAddress)",
        "version": "\(KiamVersion.current)",
        "host": "\(configuration.hosts.joined(separator: ","))",
      ])
    var failure: (any Error)?
    do {
      try await group.run()
    } catch {
      failure = error
    }
    try? await http.shutdown()
    if let failure {
      if let kiam = failure as? KiamError { throw kiam }
      throw KiamError(code: .internal, message: "agent stopped", cause: failure)
    }
  }
}
