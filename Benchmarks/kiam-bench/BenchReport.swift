import Foundation

/// The results of a run: Markdown tables for BENCHMARKS.md and the raw numbers as JSON.
final class BenchReport: @unchecked Sendable {
  private var sections: [String] = []
  private var raw: [String: Any] = [:]
  let directory: String

  init(directory: String) throws {
    self.directory = directory
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }

  /// Adds a titled table (first row is the header) with notes below it, and prints it.
  func table(_ title: String, _ rows: [[String]], notes: [String] = []) {
    guard let header = rows.first else { return }
    var text = "### \(title)\n\n| " + header.joined(separator: " | ") + " |\n|"
    text += header.map { _ in "---" }.joined(separator: "|") + "|\n"
    for row in rows.dropFirst() { text += "| " + row.joined(separator: " | ") + " |\n" }
    for note in notes { text += "\n" + note + "\n" }
    sections.append(text)
    print("\n" + text, terminator: "")
  }

  /// Keeps raw numbers under `key` for results.json.
  func record(_ key: String, _ value: Any) { raw[key] = value }

  /// Writes report.md and results.json.
  func write(header: String) throws {
    let markdown = header + "\n\n" + sections.joined(separator: "\n")
    try markdown.write(toFile: directory + "/report.md", atomically: true, encoding: .utf8)
    let data = try JSONSerialization.data(withJSONObject: Self.sanitized(raw), options: [.prettyPrinted, .sortedKeys])
    try data.write(to: URL(fileURLWithPath: directory + "/results.json"))
  }
}

extension BenchReport {
  /// JSON cannot hold NaN or infinity: those become null.
  static func sanitized(_ value: Any) -> Any {
    switch value {
    case let number as Double: return number.isFinite ? number : NSNull()
    case let dictionary as [String: Any]: return dictionary.mapValues(sanitized)
    case let array as [Any]: return array.map(sanitized)
    default: return value
    }
  }
}

/// Progress lines on stderr, so stdout stays the report.
func progress(_ message: String) {
  FileHandle.standardError.write(Data("[bench] \(message)\n".utf8))
}
