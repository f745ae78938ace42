/// Keepalive and connection-age settings from kiam's `--grpc-*` flags.
public struct GRPCConnectionSettings: Sendable, Hashable {
  /// Ping interval (`--grpc-keepalive-time-duration`, default 10s).
  public var keepaliveTime: Duration
  /// How long to wait for a ping ack (`--grpc-keepalive-timeout-duration`, default 2s).
  public var keepaliveTimeout: Duration
  /// Client only: ping even with no RPC in flight (`--grpc-keepalive-permit-without-stream`).
  public var permitWithoutStream: Bool
  /// Server only: close idle connections after this long (`--grpc-max-connection-idle-duration`).
  public var maxConnectionIdle: Duration
  /// Server only: close connections this old, so clients rebalance (`--grpc-max-connection-age-duration`).
  public var maxConnectionAge: Duration
  /// Server only: grace for RPCs on a connection closed for age (`--grpc-max-connection-age-grace-duration`).
  public var maxConnectionAgeGrace: Duration

  public init(
    keepaliveTime: Duration = .seconds(10),
    keepaliveTimeout: Duration = .seconds(2),
    permitWithoutStream: Bool = false,
    maxConnectionIdle: Duration = .seconds(15 * 60),
    maxConnectionAge: Duration = .seconds(15 * 60),
    maxConnectionAgeGrace: Duration = .seconds(15 * 60)
  ) {
    self.keepaliveTime = keepaliveTime
    self.keepaliveTimeout = keepaliveTimeout
    self.permitWithoutStream = permitWithoutStream
    self.maxConnectionIdle = maxConnectionIdle
    self.maxConnectionAge = maxConnectionAge
    self.maxConnectionAgeGrace = maxConnectionAgeGrace
  }

  /// kiam's defaults.
  public static var defaults: GRPCConnectionSettings { GRPCConnectionSettings() }
}
