import ArgumentParser
import KiamShared
import Logging

/// `--json-log` and `--level`, accepted by every command.
struct LogOptions: ParsableArguments {
  @Flag(
    name: .customLong("json-log"), inversion: .prefixedNo, exclusivity: .chooseLast, help: "Output log in JSON format.")
  var jsonLog = false

  @Option(name: .customLong("level"), help: "Log level: debug, info, warn or error (default: info).")
  var level: String?

  func logLevel() throws -> Logger.Level {
    switch (level ?? "info").lowercased() {
    case "debug": return .debug
    case "info": return .info
    case "warn", "warning": return .warning
    case "error": return .error
    default:
      throw KiamError.flag("level", "invalid value \(JSON.quote(level ?? "")), want one of debug, info, warn, error")
    }
  }

  var format: LogFormat { jsonLog ? .json : .text }
}
