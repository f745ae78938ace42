public import Logging

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A `LogHandler` that writes kiam-style log lines: logrus text by default, or one JSON object
/// per line (`level`, `msg`, `time` and every metadata field at the top level) with `--json-log`.
public struct KiamLogHandler: LogHandler {
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level
  public var metadataProvider: Logger.MetadataProvider?

  private let format: LogFormat
  private let sink: LogSink

  /// Creates a handler.
  /// - Parameters:
  ///   - format: Text or JSON.
  ///   - level: The minimum level written.
  ///   - sink: Where lines go; standard error by default.
  public init(format: LogFormat, level: Logger.Level, sink: LogSink = .standardError) {
    self.format = format
    self.logLevel = level
    self.sink = sink
  }

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  public func log(event: LogEvent) {
    var fields = self.metadata
    if let provided = metadataProvider?.get() {
      fields.merge(provided) { _, new in new }
    }
    if let extra = event.metadata {
      fields.merge(extra) { _, new in new }
    }
    if let error = event.error {
      fields["error"] = .string(KiamError.describe(error))
    }
    let line: String
    switch format {
    case .json:
      line = Self.jsonLine(level: event.level, message: event.message.description, fields: fields)
    case .text:
      line = Self.textLine(level: event.level, message: event.message.description, fields: fields)
    }
    sink.emit(line)
  }

  /// logrus level names (`warning` for warn, as logrus prints it).
  static func levelName(_ level: Logger.Level) -> String {
    switch level {
    case .trace: "trace"
    case .debug: "debug"
    case .info: "info"
    case .notice: "info"
    case .warning: "warning"
    case .error: "error"
    case .critical: "fatal"
    }
  }

  static func jsonLine(level: Logger.Level, message: String, fields: Logger.Metadata) -> String {
    var out = "{"
    var all: [(String, Logger.Metadata.Value)] = fields.map { ($0.key, $0.value) }
    // Fields that clash with the reserved keys are prefixed the way logrus does.
    all = all.map { key, value in
      (["level", "msg", "time"].contains(key) ? "fields.\(key)" : key, value)
    }
    all.append(("level", .string(levelName(level))))
    all.append(("msg", .string(message)))
    all.append(("time", .string(timestamp())))
    all.sort { $0.0 < $1.0 }
    for (index, (key, value)) in all.enumerated() {
      if index > 0 { out += "," }
      JSON.appendString(key, to: &out)
      out += ":"
      appendJSON(value, to: &out)
    }
    out += "}"
    return out
  }

  private static func appendJSON(_ value: Logger.Metadata.Value, to out: inout String) {
    switch value {
    case .string(let s):
      JSON.appendString(s, to: &out)
    case .stringConvertible(let c):
      JSON.appendString(c.description, to: &out)
    case .array(let items):
      out += "["
      for (i, item) in items.enumerated() {
        if i > 0 { out += "," }
        appendJSON(item, to: &out)
      }
      out += "]"
    case .dictionary(let dict):
      out += "{"
      for (i, key) in dict.keys.sorted().enumerated() {
        if i > 0 { out += "," }
        JSON.appendString(key, to: &out)
        out += ":"
        appendJSON(dict[key]!, to: &out)
      }
      out += "}"
    }
  }

  static func textLine(level: Logger.Level, message: String, fields: Logger.Metadata) -> String {
    var out = "time=\"\(timestamp())\" level=\(levelName(level)) msg="
    appendTextValue(message, to: &out)
    for key in fields.keys.sorted() {
      out += " \(key)="
      appendTextValue(flatten(fields[key]!), to: &out)
    }
    return out
  }

  private static func flatten(_ value: Logger.Metadata.Value) -> String {
    switch value {
    case .string(let s): s
    case .stringConvertible(let c): c.description
    case .array(let items): "[" + items.map(flatten).joined(separator: " ") + "]"
    case .dictionary(let dict):
      "map[" + dict.keys.sorted().map { "\($0):\(flatten(dict[$0]!))" }.joined(separator: " ") + "]"
    }
  }

  /// logrus quotes a value unless it consists only of `[A-Za-z0-9-._/@^+]`.
  private static func appendTextValue(_ value: String, to out: inout String) {
    let plain =
      !value.isEmpty
      && value.unicodeScalars.allSatisfy { c in
        (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || (c >= "0" && c <= "9")
          || "-._/@^+".unicodeScalars.contains(c)
      }
    if plain {
      out += value
    } else {
      JSON.appendString(value, to: &out)
    }
  }

  /// The current time as RFC 3339 UTC with second precision, like logrus' default.
  static func timestamp() -> String {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return RFC3339.format(epochSeconds: Int64(now.tv_sec))
  }
}
