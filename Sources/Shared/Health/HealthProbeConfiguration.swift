/// Settings of `kiam health`, filled from its flags.
public struct HealthProbeConfiguration: Sendable {
  /// `--server-address`.
  public var serverAddress: HostPort
  /// `--cert`, `--key`, `--ca`.
  public var tls: TLSFiles
  /// `--gateway-timeout-creation`: how long to try to reach the server at all.
  public var connectTimeout: Duration
  /// `--timeout`: how long to keep asking for a healthy answer once connected.
  public var timeout: Duration
  /// Keepalive flags.
  public var connection: GRPCConnectionSettings

  public init(
    serverAddress: HostPort, tls: TLSFiles, connectTimeout: Duration = .seconds(1), timeout: Duration = .seconds(1),
    connection: GRPCConnectionSettings = .defaults
  ) {
    self.serverAddress = serverAddress
    self.tls = tls
    self.connectTimeout = connectTimeout
    self.timeout = timeout
    self.connection = connection
  }
}
