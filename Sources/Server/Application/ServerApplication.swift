import AsyncHTTPClient
import GRPCCore
import GRPCNIOTransportHTTP2
public import KiamShared
public import Logging
import ServiceLifecycle
import UnixSignals

/// Assembles and runs `kiam server`: every long-running part is a `Service` in one
/// `ServiceGroup`, which SIGTERM and SIGINT drain (in-flight RPCs finish).
public struct ServerApplication: Sendable {
  private let configuration: ServerConfiguration
  private let logger: Logger
  private let metrics: KiamMetrics
  private let credentialsOverride: (any CredentialsProvider)?
  private let clock: WallClock

  /// - Parameters:
  ///   - credentials: Replaces the STS-backed provider (tests only).
  ///   - clock: What credentials' expiry is compared with (tests move a manual one).
  public init(
    configuration: ServerConfiguration, logger: Logger, metrics: KiamMetrics = KiamMetrics(),
    credentials: (any CredentialsProvider)? = nil, clock: WallClock = .system
  ) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
    self.credentialsOverride = credentials
    self.clock = clock
  }

  static func cacheSettings(_ configuration: ServerConfiguration) -> CredentialsCacheSettings {
    CredentialsCacheSettings(
      minimumLifetime: configuration.credentialFloor,
      refreshMargin: configuration.sessionRefresh, maxConcurrentFetches: configuration.fetchers,
      rateLimit: configuration.stsRateLimit, burst: configuration.stsBurst)
  }

  /// Runs until SIGTERM/SIGINT (then drains and returns) or a fatal error.
  public func run() async throws {
    // The same rules as the CLI's, for configurations built in code; applied ones are idempotent.
    let (configuration, warnings) = try self.configuration.validated()
    for warning in warnings { logger.warning("\(warning)") }
    let state = ServerState(pods: PodCache(), namespaces: NamespaceCache(matching: configuration.permittedMatching))
    let store = try await TLSMaterialStore(files: configuration.tls, role: .server, metrics: metrics, logger: logger)
    // Outbound TLS (STS, instance metadata, a Kubernetes API without a CA of its own) trusts
    // what a Go program would on this host.
    let systemRoots = SystemTrustRoots.load(environment: configuration.environment)
    let awsTrust = try AWSHTTPClient.Trust.resolve(environment: configuration.environment, system: systemRoots)
    logger.info(
      "trust roots for outbound TLS", metadata: ["aws": "\(awsTrust.summary)", "system": "\(systemRoots.summary)"])
    var services: [any Service] = [TLSReloadService(store: store), MemoryTrimService()]

    // Where pods and namespaces come from.
    let kubernetes: KubernetesClient?
    let events: any EventSink
    var identity: (any AgentIdentityVerifier)?
    if let directory = configuration.podManifests {
      if configuration.requireNodeIdentity {
        throw KiamError.flag(
          "require-node-identity", "needs the Kubernetes API (TokenReview); it cannot be used with --pod-manifests")
      }
      kubernetes = nil
      events = LogEventSink(logger: logger)
      services.append(
        ManifestSource(directory: directory, pods: state.pods, namespaces: state.namespaces, logger: logger))
      logger.info("static mode: reading pods and namespaces from files", metadata: ["directory": "\(directory)"])
    } else {
      let kubeConfiguration =
        try configuration.kubeconfig.map { try KubernetesConfiguration.kubeconfig(path: $0) }
        ?? KubernetesConfiguration.inCluster(environment: configuration.environment)
      let client = try KubernetesClient(configuration: kubeConfiguration, logger: logger, systemRoots: systemRoots)
      kubernetes = client
      let recorder = KubernetesEventRecorder(client: client, logger: logger)
      events = recorder
      let reflectorMetrics = ReflectorMetrics(metrics: metrics)
      services.append(
        Reflector(
          client: client, path: "/api/v1/namespaces", resource: "namespaces",
          store: ClusterStores.namespaces(state.namespaces), logger: logger, metrics: reflectorMetrics))
      services.append(
        Reflector(
          client: client, path: "/api/v1/pods", resource: "pods", store: ClusterStores.pods(state.pods),
          logger: logger, metrics: reflectorMetrics))
      services.append(recorder)
      if configuration.requireNodeIdentity {
        identity = TokenReviewVerifier(client: client, pods: state.pods, logger: logger)
      }
      logger.info("watching the Kubernetes API", metadata: ["source": "\(kubeConfiguration.source)"])
    }

    // AWS: STS client, server credentials, the credentials cache and its prefetching.
    let http = AWSHTTPClient.make(trust: awsTrust)
    let sts = STSClient(
      endpoint: STSEndpoint.resolve(region: configuration.region, override: configuration.stsEndpoint), http: http,
      logger: logger)
    let metadataEndpoint =
      configuration.environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
      ?? "http://169.254.169.254"
    let instanceMetadata = InstanceMetadataClient(endpoint: metadataEndpoint, http: http)
    let assumer = DeferredRoleAssumer()
    let cache = CredentialsCache(
      assumer: assumer, settings: Self.cacheSettings(configuration), metrics: metrics, logger: logger, clock: clock)
    let coordinator = PrefetchCoordinator(state: state, cache: cache)
    if credentialsOverride == nil {
      coordinator.attach()
      services.append(cache)
    }
    let startup = ServerStartup(
      configuration: configuration, state: state, coordinator: coordinator, assumer: assumer, http: http, sts: sts,
      metadata: instanceMetadata, logger: logger)

    let credentials: any CredentialsProvider = credentialsOverride ?? cache
    let metricsEndpoint = configuration.prometheusListenAddress.map {
      MetricsEndpoint(address: $0, metrics: metrics, logger: logger)
    }
    let issuer = CredentialIssuer(
      state: state, credentials: credentials, events: events, identity: identity, podWait: configuration.podWaitTimeout,
      logger: logger)
    let service = KiamGRPCService(
      state: state, issuer: issuer, metricsEndpoint: metricsEndpoint, minimumLifetime: configuration.credentialFloor,
      refreshMargin: configuration.sessionRefresh, logger: logger)
    let transport = try KiamTransports.server(bind: configuration.bind, store: store, settings: configuration.grpc)
    let server = GRPCServer(
      transport: transport, services: [service], interceptors: [MetricsServerInterceptor(metrics: metrics)])
    services.append(GRPCServerService(server: server))
    if let metricsEndpoint { services.append(metricsEndpoint) }
    var serviceConfigurations = services.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
    serviceConfigurations.append(.init(service: startup, successTerminationBehavior: .ignore))
    let group = ServiceGroup(
      configuration: .init(
        services: serviceConfigurations,
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger))
    logger.info(
      "kiam server starting", metadata: ["bind": "\(configuration.bind)", "version": "\(KiamVersion.current)"])
    var failure: (any Error)?
    do {
      try await group.run()
    } catch {
      failure = error
    }
    try? await kubernetes?.shutdown()
    try? await http.shutdown()
    if let failure {
      throw KiamError(code: .internal, message: "server stopped", cause: failure)
    }
  }
}
