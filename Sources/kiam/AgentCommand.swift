import ArgumentParser
import KiamAgent
import KiamShared
import NIOCore

/// `kiam agent`: the metadata API pods talk to, on every node.
struct AgentCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "agent", abstract: "Run the kiam agent: the EC2 metadata API for the pods of this node.")

  @OptionGroup var log: LogOptions
  @OptionGroup var telemetry: TelemetryOptions
  @OptionGroup var tls: TLSOptions
  @OptionGroup var client: ClientOptions

  @Option(name: .customLong("port"), help: "HTTP port of the metadata API (default: 3100).")
  var port: String?
  @Flag(
    name: .customLong("allow-ip-query"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Development only: let the ?ip= query parameter choose the caller.")
  var allowIPQuery = false
  @Option(
    name: .customLong("allow-route-regexp"), help: "Paths passed to the real metadata service (default: ^$, none).")
  var allowRouteRegexp: String?
  @Option(name: .customLong("whitelist-route-regexp"), help: .hidden)
  var whitelistRouteRegexp: String?
  @Flag(
    name: .customLong("iptables"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Install the iptables DNAT rule for 169.254.169.254.")
  var iptables = false
  @Flag(
    name: .customLong("iptables-remove"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Remove the iptables rule on exit (default: true; --no-iptables-remove keeps it, failing closed).")
  var iptablesRemove = true
  @Option(
    name: .customLong("host"),
    help:
      "Node IP used as the DNAT target, or one IPv4 and one IPv6 address separated by a comma for dual-stack pods (env HOST_IP)."
  )
  var host: String?
  @Option(
    name: .customLong("host-interface"),
    help: "Pod-side interface for the DNAT rule; '+' wildcard, leading '!' inverts (default: docker0).")
  var hostInterface: String?
  @Flag(
    name: .customLong("require-imdsv2"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Refuse requests without an IMDSv2 session token.")
  var requireIMDSv2 = false
  @Option(
    name: .customLong("metadata-endpoint"),
    help: "The real instance metadata service (default: http://169.254.169.254).")
  var metadataEndpoint: String?
  @Option(
    name: .customLong("iptables-backend"),
    help:
      "iptables backend for the rule: auto (the one the node's rules are in, as kube-proxy's iptables-wrapper decides), nft or legacy (default: auto)."
  )
  var iptablesBackend: String?
  @Option(
    name: .customLong("iptables-check-interval"),
    help: "How often the iptables rule is checked and restored (default: 30s).")
  var iptablesCheckInterval: String?
  @Option(
    name: .customLong("max-connections-per-ip"),
    help: "Connections one pod address may hold open (default: 64; at the cap its longest-idle connection makes room).")
  var maxConnectionsPerIP: String?
  @Option(
    name: .customLong("max-new-connections-per-ip"),
    help:
      "New connections a second one pod address may open, burst twice that (default: 500; with --iptables the kernel resets the rest; 0: no such rule)."
  )
  var maxNewConnectionsPerIP: String?
  @Option(
    name: .customLong("node-identity-token-file"),
    help: "Projected service-account token (audience kiam) proving this agent's node to the server.")
  var nodeIdentityTokenFile: String?

  func resolve(_ context: ResolveContext) throws -> (AgentConfiguration, warnings: [String]) {
    _ = try log.logLevel()
    var warnings = try telemetry.warnings() + client.warnings()
    let hostValue = host ?? context.environment["HOST_IP"]
    guard let hostValue, !hostValue.isEmpty else {
      throw KiamError.flag("host", "required flag not provided (set --host or the HOST_IP environment variable)")
    }
    let hosts = try FlagValues.nodeAddresses(hostValue, flag: "host")
    var config = AgentConfiguration(tls: try tls.files(context: context), host: hosts[0])
    config.hosts = hosts
    config.prometheusListenAddress = try telemetry.metricsAddress()
    config.serverAddress = try client.address()
    // Accepted and checked as kiam's; only `kiam health` dials with a deadline (the agent starts without a server).
    _ = try client.connectTimeout()
    config.grpc = try client.connection()
    config.port = try FlagValues.integer(port, flag: "port", default: 3100, range: 1...65535)
    config.allowIPQuery = allowIPQuery
    var routes = allowRouteRegexp
    if routes == nil, let old = whitelistRouteRegexp {
      routes = old
      warnings.append("--whitelist-route-regexp is deprecated, use --allow-route-regexp")
    } else if whitelistRouteRegexp != nil {
      warnings.append("--whitelist-route-regexp is deprecated and ignored because --allow-route-regexp is set")
    }
    let routeFlag =
      allowRouteRegexp == nil && whitelistRouteRegexp != nil ? "whitelist-route-regexp" : "allow-route-regexp"
    let pattern = (routes ?? "").isEmpty ? "^$" : routes!
    _ = try FlagValues.regexp(pattern, flag: routeFlag)
    config.allowRouteRegexp = pattern
    config.iptables = iptables
    config.iptablesRemove = iptablesRemove
    guard let backend = IPTablesBackend.Choice.parse(iptablesBackend ?? "auto") else {
      throw KiamError.flag(
        "iptables-backend", "invalid value \(JSON.quote(iptablesBackend ?? "")), want auto, nft or legacy")
    }
    config.iptablesBackend = backend
    let interface = hostInterface ?? "docker0"
    guard !interface.isEmpty, interface != "!", !interface.contains(" ") else {
      throw KiamError.flag("host-interface", "invalid interface \(JSON.quote(interface))")
    }
    config.hostInterface = interface
    config.requireIMDSv2 = requireIMDSv2
    if let metadataEndpoint {
      guard metadataEndpoint.hasPrefix("http://") || metadataEndpoint.hasPrefix("https://") else {
        throw KiamError.flag("metadata-endpoint", "\(JSON.quote(metadataEndpoint)) is not an http(s) URL")
      }
      config.metadataEndpoint = metadataEndpoint
    }
    config.maxConnectionsPerSource = try FlagValues.integer(
      maxConnectionsPerIP, flag: "max-connections-per-ip", default: 64, range: 1...4096)
    config.newConnectionsPerSecondPerSource = try FlagValues.integer(
      maxNewConnectionsPerIP, flag: "max-new-connections-per-ip", default: 500, range: 0...100_000)
    config.iptablesCheckInterval = try FlagValues.positiveDuration(
      iptablesCheckInterval, flag: "iptables-check-interval", default: .seconds(30))
    if let nodeIdentityTokenFile, !nodeIdentityTokenFile.isEmpty {
      config.nodeIdentityTokenFile = try FlagValues.readableFile(
        nodeIdentityTokenFile, flag: "node-identity-token-file", context: context)
    }
    return (config, warnings)
  }

  /// The environment variable through which an operator chooses the agent's number of event
  /// loops (SwiftNIO's own name for its shared event loop group's size).
  static let eventLoopsVariable = "NIO_SINGLETON_GROUP_LOOP_COUNT"

  /// How many event loops the agent's process runs: one, unless `NIO_SINGLETON_GROUP_LOOP_COUNT`
  /// says otherwise.
  ///
  /// One loop serves every connection, the gRPC client and the timers. On a node the agent shares
  /// its cores with the pods it serves, and every extra busy thread is one more to wait for a time
  /// slice: with two loops on two shared cores the agent waited for a CPU about 830 ms per second
  /// of load and its 99th percentile was 3.8 ms; with one loop it waits about 30 ms and the
  /// 99th percentile is 2.8 ms, with less CPU per request (BENCHMARKS.md, "One event loop"). One
  /// loop answers about 40,000 requests a second, far more than the pods of any node ask for.
  static func eventLoopCount(_ context: ResolveContext) throws -> Int {
    guard let value = context.environment[eventLoopsVariable] else { return 1 }
    guard let count = Int(value), (1...1024).contains(count) else {
      throw KiamError(
        code: .invalidConfiguration,
        message: "\(eventLoopsVariable): \(JSON.quote(value)) is not a number of event loops from 1 to 1024")
    }
    return count
  }

  func run() async throws {
    let context = ResolveContext.process()
    let (config, warnings) = try resolve(context)
    // Before anything creates NIO's shared group (it reads the count once, at creation).
    NIOSingletons.groupLoopCountSuggestion = try Self.eventLoopCount(context)
    let logger = try Bootstrap.logging(log, label: "kiam.agent", warnings: warnings)
    try await AgentApplication(configuration: config, logger: logger).run()
  }
}
