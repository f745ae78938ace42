import KiamShared
import Logging
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Process-wide set-up done once by the CLI layer.
enum Bootstrap {
  /// Installs the kiam log handler and logs the deprecation warnings collected while parsing.
  static func logging(_ options: LogOptions, label: String, warnings: [String]) throws -> Logger {
    let level = try options.logLevel()
    let format = options.format
    LoggingSystem.bootstrap { _ in KiamLogHandler(format: format, level: level) }
    let logger = Logger(label: label)
    active.withLock { $0 = logger }
    for warning in warnings { logger.warning("\(warning)") }
    return logger
  }

  /// The logger of the running command, once logging is set up.
  static let active = Mutex<Logger?>(nil)
}

/// The process environment as a dictionary.
enum Environment {
  static func current() -> [String: String] {
    var out: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
      let text = String(cString: entry)
      if let eq = text.firstIndex(of: "=") {
        out[String(text[..<eq])] = String(text[text.index(after: eq)...])
      }
      pointer += 1
    }
    return out
  }
}
