import ArgumentParser
import KiamShared

/// How agents and `kiam health` reach the server (`--server-address` and the gRPC client flags).
struct ClientOptions: ParsableArguments {
  @Option(name: .customLong("server-address"), help: "host:port of the kiam server (default: localhost:9610).")
  var serverAddress: String?

  @Option(name: .customLong("server-address-refresh"), help: .hidden)
  var serverAddressRefresh: String?

  @Option(name: .customLong("gateway-timeout-creation"), help: "Deadline for reaching a server (default: 1s).")
  var gatewayTimeoutCreation: String?

  @Option(name: .customLong("grpc-keepalive-time-duration"), help: "gRPC keepalive ping interval (default: 10s).")
  var keepaliveTime: String?

  @Option(name: .customLong("grpc-keepalive-time-ms"), help: .hidden)
  var keepaliveTimeMs: String?

  @Option(name: .customLong("grpc-keepalive-timeout-duration"), help: "gRPC keepalive ack timeout (default: 2s).")
  var keepaliveTimeout: String?

  @Option(name: .customLong("grpc-keepalive-timeout-ms"), help: .hidden)
  var keepaliveTimeoutMs: String?

  @Flag(
    name: .customLong("grpc-keepalive-permit-without-stream"), inversion: .prefixedNo, exclusivity: .chooseLast,
    help: "Send keepalive pings even without active RPCs.")
  var permitWithoutStream = false

  func address() throws -> HostPort {
    try FlagValues.hostPort(serverAddress, flag: "server-address", default: "localhost:9610")
  }

  func connectTimeout() throws -> Duration {
    try FlagValues.positiveDuration(gatewayTimeoutCreation, flag: "gateway-timeout-creation", default: .seconds(1))
  }

  func connection() throws -> GRPCConnectionSettings {
    var settings = GRPCConnectionSettings.defaults
    settings.keepaliveTime = try FlagValues.positiveDuration(
      keepaliveTime ?? keepaliveTimeMs,
      flag: keepaliveTime == nil && keepaliveTimeMs != nil ? "grpc-keepalive-time-ms" : "grpc-keepalive-time-duration",
      default: .seconds(10))
    settings.keepaliveTimeout = try FlagValues.positiveDuration(
      keepaliveTimeout ?? keepaliveTimeoutMs,
      flag: keepaliveTimeout == nil && keepaliveTimeoutMs != nil
        ? "grpc-keepalive-timeout-ms" : "grpc-keepalive-timeout-duration",
      default: .seconds(2))
    settings.permitWithoutStream = permitWithoutStream
    return settings
  }

  func warnings() throws -> [String] {
    var out: [String] = []
    if let refresh = serverAddressRefresh {
      _ = try FlagValues.duration(refresh, flag: "server-address-refresh", default: .zero)
      out.append("--server-address-refresh is deprecated and ignored: server addresses are re-resolved automatically")
    }
    if keepaliveTimeMs != nil {
      out.append("--grpc-keepalive-time-ms is deprecated, use --grpc-keepalive-time-duration")
    }
    if keepaliveTimeoutMs != nil {
      out.append("--grpc-keepalive-timeout-ms is deprecated, use --grpc-keepalive-timeout-duration")
    }
    return out
  }
}
