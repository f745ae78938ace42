public import KiamShared

/// Everything `kiam agent` needs, filled from its flags by the CLI layer.
public struct AgentConfiguration: Sendable {
  /// `--prometheus-listen-addr`; nil disables the metrics endpoint.
  public var prometheusListenAddress: HostPort?
  /// `--cert`, `--key`, `--ca`.
  public var tls: TLSFiles
  /// `--server-address` (default `localhost:9610`).
  public var serverAddress: HostPort
  /// gRPC keepalive flags.
  public var grpc: GRPCConnectionSettings
  /// `--port` (default 3100): metadata API port, on every IPv4 and IPv6 address.
  public var port: Int
  /// `--allow-ip-query`: development only, let `?ip=` choose the caller.
  public var allowIPQuery: Bool
  /// `--allow-route-regexp` (default `^$`, deny all): paths passed to the real metadata service.
  public var allowRouteRegexp: String
  /// `--iptables`: install the DNAT rule.
  public var iptables: Bool
  /// `--iptables-remove` (default true): remove the rule on exit.
  public var iptablesRemove: Bool
  /// `--iptables-backend` (default auto): nft, legacy, or the one the node's rules are in.
  public var iptablesBackend: IPTablesBackend.Choice
  /// `--host` / `HOST_IP`: the node's addresses used as DNAT targets, at most one per family
  /// (`status.podIPs` of the host-network agent on a dual-stack node, whose first is always
  /// `status.podIP`): one iptables rule for IPv4 pods (169.254.169.254), one ip6tables rule for
  /// IPv6 pods (fd00:ec2::254).
  public var hosts: [String]
  /// The first of ``hosts`` (`status.podIP`): what IMDSv2 tokens are bound to, so the order
  /// matters; the downward API keeps it.
  public var host: String { hosts.first ?? "" }
  /// `--host-interface` (default `docker0`): pod-side interface, `+` wildcard, leading `!` inverts.
  public var hostInterface: String
  /// `--require-imdsv2`: refuse tokenless (IMDSv1) requests.
  public var requireIMDSv2: Bool
  /// `--metadata-endpoint` (default `http://169.254.169.254`): the real instance metadata service.
  public var metadataEndpoint: String
  /// `--node-identity-token-file`: projected service-account token sent to the server.
  public var nodeIdentityTokenFile: String?
  /// `--iptables-check-interval` (default 30s): how often the rule is checked and restored.
  public var iptablesCheckInterval: Duration
  /// `--max-connections-per-ip` (default 64): connections one pod address may hold.
  public var maxConnectionsPerSource: Int
  /// `--max-new-connections-per-ip` (default 500): new connections a second one pod address may
  /// open (burst twice that); with `--iptables` the kernel resets the rest (``IPTablesRule``);
  /// 0 installs no such rule.
  public var newConnectionsPerSecondPerSource: Int

  public init(
    prometheusListenAddress: HostPort? = nil,
    tls: TLSFiles,
    serverAddress: HostPort = HostPort(host: "localhost", port: 9610),
    grpc: GRPCConnectionSettings = .defaults,
    port: Int = 3100,
    allowIPQuery: Bool = false,
    allowRouteRegexp: String = "^$",
    iptables: Bool = false,
    iptablesRemove: Bool = true,
    iptablesBackend: IPTablesBackend.Choice = .auto,
    host: String,
    hostInterface: String = "docker0",
    requireIMDSv2: Bool = false,
    metadataEndpoint: String = "http://169.254.169.254",
    nodeIdentityTokenFile: String? = nil,
    iptablesCheckInterval: Duration = .seconds(30),
    maxConnectionsPerSource: Int = 64,
    newConnectionsPerSecondPerSource: Int = 500
  ) {
    self.prometheusListenAddress = prometheusListenAddress
    self.tls = tls
    self.serverAddress = serverAddress
    self.grpc = grpc
    self.port = port
    self.allowIPQuery = allowIPQuery
    self.allowRouteRegexp = allowRouteRegexp
    self.iptables = iptables
    self.iptablesRemove = iptablesRemove
    self.iptablesBackend = iptablesBackend
    self.hosts = [host]
    self.hostInterface = hostInterface
    self.requireIMDSv2 = requireIMDSv2
    self.metadataEndpoint = metadataEndpoint
    self.nodeIdentityTokenFile = nodeIdentityTokenFile
    self.iptablesCheckInterval = iptablesCheckInterval
    self.maxConnectionsPerSource = maxConnectionsPerSource
    self.newConnectionsPerSecondPerSource = newConnectionsPerSecondPerSource
  }
}
