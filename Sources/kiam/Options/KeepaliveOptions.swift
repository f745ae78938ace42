import ArgumentParser
import KiamShared

/// The gRPC keepalive flags, shared by the server and the clients (agent, `kiam health`), with
/// kiam's deprecated millisecond spellings.
struct KeepaliveOptions: ParsableArguments {
  @Option(name: .customLong("grpc-keepalive-time-duration"), help: "gRPC keepalive ping interval (default: 10s).")
  var keepaliveTime: String?

  @Option(name: .customLong("grpc-keepalive-time-ms"), help: .hidden)
  var keepaliveTimeMs: String?

  @Option(name: .customLong("grpc-keepalive-timeout-duration"), help: "gRPC keepalive ack timeout (default: 2s).")
  var keepaliveTimeout: String?

  @Option(name: .customLong("grpc-keepalive-timeout-ms"), help: .hidden)
  var keepaliveTimeoutMs: String?

  /// `settings` with the keepalive interval and timeout from the flags (defaults: 10s, 2s).
  func applied(to settings: GRPCConnectionSettings) throws -> GRPCConnectionSettings {
    var settings = settings
    settings.keepaliveTime = try FlagValues.positiveDuration(
      keepaliveTime ?? keepaliveTimeMs,
      flag: keepaliveTime == nil && keepaliveTimeMs != nil ? "grpc-keepalive-time-ms" : "grpc-keepalive-time-duration",
      default: GRPCConnectionSettings.defaults.keepaliveTime)
    settings.keepaliveTimeout = try FlagValues.positiveDuration(
      keepaliveTimeout ?? keepaliveTimeoutMs,
      flag: keepaliveTimeout == nil && keepaliveTimeoutMs != nil
        ? "grpc-keepalive-timeout-ms" : "grpc-keepalive-timeout-duration",
      default: GRPCConnectionSettings.defaults.keepaliveTimeout)
    return settings
  }

  /// Deprecation warnings for the millisecond spellings.
  var warnings: [String] {
    var out: [String] = []
    if keepaliveTimeMs != nil {
      out.append("--grpc-keepalive-time-ms is deprecated, use --grpc-keepalive-time-duration")
    }
    if keepaliveTimeoutMs != nil {
      out.append("--grpc-keepalive-timeout-ms is deprecated, use --grpc-keepalive-timeout-duration")
    }
    return out
  }
}
