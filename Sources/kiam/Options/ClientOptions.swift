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

  @OptionGroup var keepalive: KeepaliveOptions

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
    var settings = try keepalive.applied(to: .defaults)
    settings.permitWithoutStream = permitWithoutStream
    return settings
  }

  func warnings() throws -> [String] {
    var out: [String] = []
    if let refresh = serverAddressRefresh {
      _ = try FlagValues.duration(refresh, flag: "server-address-refresh", default: .zero)
      out.append("--server-address-refresh is deprecated and ignored: server addresses are re-resolved automatically")
    }
    return out + keepalive.warnings
  }
}
