import ArgumentParser
import KiamShared

/// The root command: `kiam agent | server | health | version`.
struct KiamCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kiam",
    abstract: "Kubernetes pods get the AWS IAM role of their iam.amazonaws.com/role annotation.",
    version: KiamVersion.current,
    subcommands: [AgentCommand.self, ServerCommand.self, HealthCommand.self, VersionCommand.self])
}
