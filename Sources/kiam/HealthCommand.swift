import ArgumentParser
import KiamShared
import Logging

/// `kiam health`: the gRPC health probe Kubernetes runs against a server.
struct HealthCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "health", abstract: "Check the health of a kiam server (exit 0 when healthy).")

  @OptionGroup var log: LogOptions
  @OptionGroup var tls: TLSOptions
  @OptionGroup var client: ClientOptions

  @Option(name: .customLong("timeout"), help: "How long to keep asking for a healthy answer (default: 1s).")
  var timeout: String?

  func resolve(_ context: ResolveContext) throws -> (HealthProbeConfiguration, warnings: [String]) {
    _ = try log.logLevel()
    let config = HealthProbeConfiguration(
      serverAddress: try client.address(),
      tls: try tls.files(context: context),
      connectTimeout: try client.connectTimeout(),
      timeout: try FlagValues.positiveDuration(timeout, flag: "timeout", default: .seconds(1)),
      connection: try client.connection())
    return (config, try client.warnings())
  }

  func run() async throws {
    let (config, warnings) = try resolve(.process())
    let logger = try Bootstrap.logging(log, label: "kiam.health", warnings: warnings)
    let message = try await HealthProbe.run(config, logger: logger)
    logger.info("healthy: \(message)")
  }
}
