import Synchronization

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// Where finished log lines go. The default writes to standard error; tests capture lines.
public final class LogSink: Sendable {
  private let write: @Sendable (String) -> Void

  /// Creates a sink that hands every finished line (without the trailing newline) to `write`.
  public init(_ write: @escaping @Sendable (String) -> Void) {
    self.write = write
  }

  /// Emits one line.
  public func emit(_ line: String) { write(line) }

  /// A sink writing to standard error, one `write(2)` per line so lines never interleave.
  public static let standardError = LogSink { line in
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    bytes.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let n = Glibc.write(2, raw.baseAddress! + offset, raw.count - offset)
        if n <= 0 { break }
        offset += n
      }
    }
  }

  /// A sink that keeps lines in memory, for tests.
  public static func memory() -> (LogSink, @Sendable () -> [String]) {
    let lines = Mutex<[String]>([])
    let sink = LogSink { line in lines.withLock { $0.append(line) } }
    return (sink, { lines.withLock { $0 } })
  }
}
