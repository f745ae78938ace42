import ArgumentParser
import KiamShared
import Logging
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Entry point. Every failure (bad flag, bad file, startup error) ends with exactly one line on
/// standard error and exit status 1, as Go kiam's kingpin/logrus did; help exits 0.
@main
enum KiamMain {
  static func main() async {
    MemoryTrimService.limitMallocArenas()
    let code = await execute(Array(CommandLine.arguments.dropFirst()))
    exit(code)
  }

  /// Parses and runs `arguments`; returns the exit status.
  static func execute(_ arguments: [String]) async -> Int32 {
    do {
      var command = try KiamCommand.parseAsRoot(KiamCommand.normalize(arguments))
      // The root itself does nothing: kingpin's words and status (ArgumentParser prints help and exits 0).
      if command is KiamCommand {
        writeError("expected command but got none, try --help")
        return 1
      }
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
      return 0
    } catch {
      if let kiam = error as? KiamError {
        // After start-up, fatal errors are log lines (JSON with --json-log), like logrus' Fatal.
        if let logger = Bootstrap.active.withLock({ $0 }) {
          logger.critical("\(kiam.description)")
        } else {
          writeError(kiam.description)
        }
        return 1
      }
      let exitCode = KiamCommand.exitCode(for: error)
      if exitCode == .success {
        print(KiamCommand.fullMessage(for: error))
        return 0
      }
      writeError(KiamCommand.message(for: error))
      return 1
    }
  }

  /// Writes `kiam: error: <message>` as one line.
  static func writeError(_ message: String) {
    let line = message.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters() }.filter { !$0.isEmpty }
      .joined(separator: " ")
    LogSink.standardError.emit("kiam: error: \(line)")
  }
}

extension Substring {
  fileprivate func trimmingCharacters() -> String {
    var s = self[...]
    while s.first?.isWhitespace == true { s = s.dropFirst() }
    while s.last?.isWhitespace == true { s = s.dropLast() }
    return String(s)
  }
}
