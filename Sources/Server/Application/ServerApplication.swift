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

  /// - Parameter credentials: Replaces the STS-backed provider (tests only).
  public init(
    configuration: ServerConfiguration, logger: Logger, metrics: KiamMetrics = KiamMetrics(),
    credentials: (any CredentialsProvider)? = nil
  ) {
    self.configuration = configuration
    self.logger = logger
    self.metrics = metrics
    self.credentialsOverride = credentials
  }

  /// Runs until SIGTERM/SIGINT (then drains and returns) or a fatal error.
  public func run() async throws {
    let state = ServerState(pods: PodCache(), namespaces: NamespaceCache(strict: !configuration.disableStrictNamespaceRegexp))
    if let base = configuration.roleBaseARN, !configuration.roleBaseARNAutodetect {
      state.setResolver(RoleARNResolver(baseARN: base))
    }
    let store = try await TLSMaterialStore(files: configuration.tls, role: .server, metrics: metrics, logger: logger)
    var services: [any Service] = [TLSReloadService(store: store)]

    // Where pods and namespaces come from.
    let kubernetes: KubernetesClient?
    let events: any EventSink
    var identity: (any AgentIdentityVerifier)?
    if let directory = configuration.podManifests {
      if configuration.requireNodeIdentity {
        throw KiamError.flag("require-node-identity", "needs the Kubernetes API (TokenReview); it cannot be used with --pod-manifests")
      }
      kubernetes = nil
      events = LogEventSink(logger: logger)
      services.append(ManifestSource(directory: directory, pods: state.pods, namespaces: state.namespaces, logger: logger))
      logger.info("static mode: reading pods and namespaces from files", metadata: ["directory": "\(directory)"])
    } else {
      let kubeConfiguration =
        try configuration.kubeconfig.map { try KubernetesConfiguration.kubeconfig(path: $0) }
        ?? KubernetesConfiguration.inCluster(environment: configuration.environment)
      let client = try KubernetesClient(configuration: kubeConfiguration, logger: logger)
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

    let credentials = credentialsOverride ?? UnconfiguredCredentialsProvider()
    let service = KiamGRPCService(
      state: state, credentials: credentials, events: events, identity: identity,
      podWait: configuration.podWaitTimeout, defaultSession: configuration.session, logger: logger)
    let transport = try KiamTransports.server(bind: configuration.bind, store: store, settings: configuration.grpc)
    let server = GRPCServer(
      transport: transport, services: [service], interceptors: [MetricsServerInterceptor(metrics: metrics)])
    services.append(GRPCServerService(server: server))
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
    logger.info("kiam server starting", metadata: ["bind": "\(configuration.bind)", "version": "\(KiamVersion.current)"])
    var failure: (any Error)?
    do {
      try await group.run()
    } catch {
      failure = error
    }
    try? await kubernetes?.shutdown()
    if let failure {
      throw KiamError(code: .internal, message: "server stopped", cause: failure)
    }
  }
}

/// Stand-in until the STS provider is wired: every request fails clearly.
struct UnconfiguredCredentialsProvider: CredentialsProvider {
  func credentials(for identity: RoleIdentity) async throws -> AWSCredentials {
    throw CredentialsError(code: "NotConfigured", message: "no STS credentials provider configured", isTransient: false)
  }
}
