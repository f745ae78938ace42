import ArgumentParser
import KiamShared

/// `kiam version`.
struct VersionCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "version", abstract: "Print the version.")

  func run() throws {
    print(KiamVersion.current)
  }
}
