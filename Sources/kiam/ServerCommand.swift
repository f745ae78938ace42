import ArgumentParser
import KiamServer
import KiamShared

/// `kiam server`: watches pods and namespaces, assumes roles, answers agents over gRPC.
struct ServerCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "server", abstract: "Run the kiam server: pod/namespace watch, policy, STS, gRPC.")

  @OptionGroup var log: LogOptions
  @OptionGroup var telemetry: TelemetryOptions
  @OptionGroup var tls: TLSOptions

  @Option(name: .customLong("fetchers"), help: "Maximum concurrent STS calls (default: 8).")
  var fetchers: String?
  @Option(name: .customLong("prefetch-buffer-size"), help: "Accepted for compatibility (default: 1000).")
  var prefetchBufferSize: String?
  @Option(name: .customLong("bind"), help: "gRPC listen address (default: localhost:9610).")
  var bind: String?
  @Option(name: .customLong("kubeconfig"), help: "Path to a kubeconfig; empty means in-cluster configuration.")
  var kubeconfig: String?
  @Option(
    name: .customLong("pod-manifests"),
    help: "Read Pod and Namespace YAML files from this directory instead of the Kubernetes API.")
  var podManifests: String?
  @Option(
    name: .customLong("sync"),
    help: "Accepted for compatibility; watches resume from their resourceVersion (default: 1m).")
  var sync: String?
  @Option(
    name: .customLong("pod-wait-timeout"),
    help: "How long a request for a pod IP not yet known waits for the watch (default: 800ms).")
  var podWaitTimeout: String?
  @Flag(
    name: .customLong("require-node-identity"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Only give an agent the roles of pods on its own node.")
  var requireNodeIdentity = false
  @Option(
    name: .customLong("role-base-arn"),
    help: "Prefix for role names that are not ARNs, e.g. arn:aws:iam::123456789012:role/.")
  var roleBaseARN: String?
  @Flag(
    name: .customLong("role-base-arn-autodetect"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Derive --role-base-arn from the instance profile.")
  var roleBaseARNAutodetect = false
  @Flag(
    name: .customLong("disable-strict-namespace-regexp"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Match iam.amazonaws.com/permitted anywhere in the role ARN instead of the whole ARN.")
  var disableStrictNamespaceRegexp = false
  @Option(
    name: .customLong("permitted-regexp-mode"),
    help:
      "How iam.amazonaws.com/permitted is matched: v4 (the resolved role ARN, default) or v3 (the role as annotated, unanchored, as kiam v3)."
  )
  var permittedRegexpMode: String?
  @Option(name: .customLong("session"), help: "STS session name suffix when a pod sets none (default: kiam).")
  var session: String?
  @Option(name: .customLong("session-duration"), help: "Requested credential lifetime, 15m to 12h (default: 1h).")
  var sessionDuration: String?
  @Option(
    name: .customLong("session-refresh"),
    help: "Refresh credentials at least this long before they expire (default: 5m).")
  var sessionRefresh: String?
  @Option(
    name: .customLong("min-credential-lifetime"),
    help: "Served credentials keep at least this much validity (default: 30m, a third of shorter sessions).")
  var minCredentialLifetime: String?
  @Option(name: .customLong("assume-role-arn"), help: "Role the server assumes first and uses to assume pod roles.")
  var assumeRoleARN: String?
  @Option(name: .customLong("region"), help: "AWS region of the STS endpoint (default: global endpoint).")
  var region: String?
  @Option(name: .customLong("sts-endpoint"), help: "STS endpoint URL, overriding --region (VPC endpoints, tests).")
  var stsEndpoint: String?
  @Option(name: .customLong("sts-rate-limit"), help: "Sustained STS calls per second (default: 100).")
  var stsRateLimit: String?
  @Option(name: .customLong("sts-burst"), help: "STS call burst size (default: 1000).")
  var stsBurst: String?
  @OptionGroup var keepalive: KeepaliveOptions
  @Option(
    name: .customLong("grpc-max-connection-idle-duration"), help: "Close idle agent connections after (default: 15m).")
  var maxConnectionIdle: String?
  @Option(
    name: .customLong("grpc-max-connection-age-duration"),
    help: "Close agent connections this old so agents rebalance (default: 15m).")
  var maxConnectionAge: String?
  @Option(
    name: .customLong("grpc-max-connection-age-grace-duration"),
    help: "Grace for RPCs on connections closed for age (default: 15m).")
  var maxConnectionAgeGrace: String?

  /// The configuration these flags describe, plus warnings to log once logging is up.
  func resolve(_ context: ResolveContext) throws -> (ServerConfiguration, warnings: [String]) {
    _ = try log.logLevel()
    var warnings = try telemetry.warnings()
    var config = ServerConfiguration(tls: try tls.files(context: context))
    config.environment = context.environment
    config.prometheusListenAddress = try telemetry.metricsAddress()
    config.bind = try FlagValues.hostPort(bind, flag: "bind", default: "localhost:9610")
    config.fetchers = try FlagValues.integer(fetchers, flag: "fetchers", default: 8, range: 1...1024)
    config.prefetchBufferSize = try FlagValues.integer(
      prefetchBufferSize, flag: "prefetch-buffer-size", default: 1000, range: 0...10_000_000)
    if let kubeconfig, !kubeconfig.isEmpty {
      config.kubeconfig = try FlagValues.readableFile(kubeconfig, flag: "kubeconfig", context: context)
    }
    if let podManifests, !podManifests.isEmpty {
      guard FileAccess.isDirectory(context.path(podManifests)) else {
        throw KiamError.flag("pod-manifests", "\(JSON.quote(podManifests)) is not a directory")
      }
      config.podManifests = podManifests
    }
    if config.kubeconfig != nil && config.podManifests != nil {
      throw KiamError.flag("pod-manifests", "cannot be combined with --kubeconfig")
    }
    config.sync = try FlagValues.positiveDuration(sync, flag: "sync", default: .seconds(60))
    config.podWaitTimeout = try FlagValues.duration(
      podWaitTimeout, flag: "pod-wait-timeout", default: .milliseconds(800))
    if config.podWaitTimeout < .zero || config.podWaitTimeout > .seconds(30) {
      throw KiamError.flag("pod-wait-timeout", "must be between 0s and 30s, got \(podWaitTimeout ?? "")")
    }
    config.requireNodeIdentity = requireNodeIdentity
    if let base = roleBaseARN, !base.isEmpty { config.roleBaseARN = base }
    config.roleBaseARNAutodetect = roleBaseARNAutodetect
    config.disableStrictNamespaceRegexp = disableStrictNamespaceRegexp
    switch permittedRegexpMode ?? "v4" {
    case "v4": config.permittedRegexpV3 = false
    case "v3": config.permittedRegexpV3 = true
    default:
      throw KiamError.flag(
        "permitted-regexp-mode", "invalid value \(JSON.quote(permittedRegexpMode ?? "")), want v4 or v3")
    }
    if let session {
      guard !session.isEmpty else { throw KiamError.flag("session", "must not be empty") }
      config.session = session
    }
    config.sessionDuration = try FlagValues.duration(sessionDuration, flag: "session-duration", default: .seconds(3600))
    config.sessionRefresh = try FlagValues.duration(sessionRefresh, flag: "session-refresh", default: .seconds(300))
    if let minCredentialLifetime {
      config.minCredentialLifetime = try FlagValues.duration(
        minCredentialLifetime, flag: "min-credential-lifetime", default: .zero)
    }
    if let assumeRoleARN, !assumeRoleARN.isEmpty { config.assumeRoleARN = assumeRoleARN }
    if let region, !region.isEmpty { config.region = region }
    if let stsEndpoint, !stsEndpoint.isEmpty {
      guard stsEndpoint.hasPrefix("https://") || stsEndpoint.hasPrefix("http://") else {
        throw KiamError.flag("sts-endpoint", "\(JSON.quote(stsEndpoint)) is not an http(s) URL")
      }
      config.stsEndpoint = stsEndpoint
    }
    config.stsRateLimit = try FlagValues.number(stsRateLimit, flag: "sts-rate-limit", default: 100)
    config.stsBurst = try FlagValues.integer(stsBurst, flag: "sts-burst", default: 1000, range: 1...100_000)
    var grpc = try keepalive.applied(to: .defaults)
    grpc.maxConnectionIdle = try FlagValues.positiveDuration(
      maxConnectionIdle, flag: "grpc-max-connection-idle-duration", default: .seconds(900))
    grpc.maxConnectionAge = try FlagValues.positiveDuration(
      maxConnectionAge, flag: "grpc-max-connection-age-duration", default: .seconds(900))
    grpc.maxConnectionAgeGrace = try FlagValues.positiveDuration(
      maxConnectionAgeGrace, flag: "grpc-max-connection-age-grace-duration", default: .seconds(900))
    config.grpc = grpc
    warnings += keepalive.warnings
    let (validated, rules) = try config.validated()
    return (validated, rules + warnings)
  }

  func run() async throws {
    let (config, warnings) = try resolve(.process())
    let logger = try Bootstrap.logging(log, label: "kiam.server", warnings: warnings)
    try await ServerApplication(configuration: config, logger: logger).run()
  }
}
