/// A strict-enough parser of the Prometheus text exposition format, to check `/metrics` pages.
public struct PrometheusText: Sendable {
  public struct Sample: Sendable, Equatable {
    public let name: String
    public let labels: [String: String]
    public let value: Double
  }

  public private(set) var samples: [Sample] = []
  public private(set) var types: [String: String] = [:]

  /// Parses `text`, throwing on any malformed line, sample without a TYPE, or duplicate series.
  public init(_ text: String) throws {
    var seen = Set<String>()
    for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
      let line = String(rawLine)
      if line.isEmpty { continue }
      if line.hasPrefix("# TYPE ") {
        let parts = line.split(separator: " ")
        guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else {
          throw TestSupportError("line \(number + 1): bad TYPE: \(line)")
        }
        guard types[String(parts[2])] == nil else {
          throw TestSupportError("line \(number + 1): duplicate TYPE \(parts[2])")
        }
        types[String(parts[2])] = String(parts[3])
        continue
      }
      if line.hasPrefix("#") { continue }
      let sample = try Self.parseSample(line, number: number + 1)
      let family = types.keys.first { sample.name == $0 || sample.name.hasPrefix($0 + "_") }
      guard family != nil else { throw TestSupportError("line \(number + 1): sample \(sample.name) has no TYPE") }
      let key =
        sample.name + "{"
        + sample.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
      guard seen.insert(key).inserted else { throw TestSupportError("line \(number + 1): duplicate series \(key)") }
      samples.append(sample)
    }
  }

  /// The value of the series `name` with exactly `labels`.
  public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
    samples.first { $0.name == name && $0.labels == labels }?.value
  }

  static func parseSample(_ line: String, number: Int) throws -> Sample {
    func fail() -> TestSupportError { TestSupportError("line \(number): malformed sample: \(line)") }
    var index = line.startIndex
    var name = ""
    while index < line.endIndex, line[index] != "{", line[index] != " " {
      let c = line[index]
      guard c.isLetter || c.isNumber || c == "_" || c == ":" else { throw fail() }
      name.append(c)
      index = line.index(after: index)
    }
    guard !name.isEmpty, !(name.first!.isNumber) else { throw fail() }
    var labels: [String: String] = [:]
    if index < line.endIndex, line[index] == "{" {
      index = line.index(after: index)
      while index < line.endIndex, line[index] != "}" {
        var key = ""
        while index < line.endIndex, line[index] != "=" {
          key.append(line[index])
          index = line.index(after: index)
        }
        guard index < line.endIndex else { throw fail() }
        index = line.index(after: index)
        guard index < line.endIndex, line[index] == "\"" else { throw fail() }
        index = line.index(after: index)
        var value = ""
        while index < line.endIndex, line[index] != "\"" {
          if line[index] == "\\" {
            index = line.index(after: index)
            guard index < line.endIndex else { throw fail() }
          }
          value.append(line[index])
          index = line.index(after: index)
        }
        guard index < line.endIndex else { throw fail() }
        index = line.index(after: index)
        labels[key] = value
        if index < line.endIndex, line[index] == "," { index = line.index(after: index) }
      }
      guard index < line.endIndex else { throw fail() }
      index = line.index(after: index)
    }
    let rest = line[index...].split(separator: " ")
    guard rest.count == 1 || rest.count == 2 else { throw fail() }
    let text = String(rest[0])
    let value: Double
    switch text {
    case "+Inf": value = .infinity
    case "-Inf": value = -.infinity
    case "NaN": value = .nan
    default:
      guard let v = Double(text) else { throw fail() }
      value = v
    }
    return Sample(name: name, labels: labels, value: value)
  }
}
