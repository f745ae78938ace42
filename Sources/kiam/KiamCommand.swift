import ArgumentParser
import KiamShared

/// The root command: `kiam agent | server | health | version`.
struct KiamCommand: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kiam",
    abstract: "Kubernetes pods get the AWS IAM role of their iam.amazonaws.com/role annotation.",
    version: KiamVersion.current,
    subcommands: [AgentCommand.self, ServerCommand.self, HealthCommand.self, VersionCommand.self])

  /// Rewrites `--name=` (an explicitly empty value, which kingpin accepts) as `--name ""`.
  static func normalize(_ arguments: [String]) -> [String] {
    var out: [String] = []
    for argument in arguments {
      if argument.hasPrefix("--"), argument.hasSuffix("="), argument.count > 3,
        argument.firstIndex(of: "=") == argument.index(before: argument.endIndex)
      {
        out.append(String(argument.dropLast()))
        out.append("")
      } else {
        out.append(argument)
      }
    }
    return out
  }
}
