import Foundation
import KiamTestSupport

/// Resource use of a process, read from /proc.
struct ProcessUsage {
  /// Resident set size in MiB (`VmRSS`).
  var rssMiB: Double
  /// Peak resident set size in MiB (`VmHWM`).
  var peakRSSMiB: Double
  /// The anonymous part of the RSS in MiB (`RssAnon`: heap, stacks, modified data).
  var anonymousMiB: Double = 0
  /// User plus system CPU seconds.
  var cpuSeconds: Double

  /// The usage of `pid`, plus its children when `withChildren` (nginx's workers).
  static func read(_ pid: Int32, withChildren: Bool = false) -> ProcessUsage {
    var pids = [pid]
    if withChildren { pids += children(of: pid) }
    var total = ProcessUsage(rssMiB: 0, peakRSSMiB: 0, cpuSeconds: 0)
    for pid in pids {
      let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
      func kib(_ field: String) -> Double {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return 0 }
        return Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
      }
      total.rssMiB += kib("VmRSS") / 1024
      total.peakRSSMiB += kib("VmHWM") / 1024
      total.anonymousMiB += kib("RssAnon") / 1024
      total.cpuSeconds += ProcStat.cpuSeconds(pid) ?? 0
    }
    return total
  }

  private static func children(of parent: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap(Int32.init).filter { ProcStat.parent($0) == parent }
  }
}

/// Order statistics of a sample.
struct Sample {
  private(set) var values: [Double]

  init(_ values: [Double]) { self.values = values.sorted() }

  var isEmpty: Bool { values.isEmpty }
  var min: Double { values.first ?? .nan }
  var max: Double { values.last ?? .nan }
  var median: Double { percentile(50) }

  /// Nearest-rank percentile.
  func percentile(_ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let rank = Int((p / 100 * Double(values.count)).rounded(.up)) - 1
    return values[Swift.max(0, Swift.min(values.count - 1, rank))]
  }

  /// "median (min–max)".
  func spread(_ format: (Double) -> String) -> String {
    values.count == 1 ? format(median) : "\(format(median)) (\(format(min))–\(format(max)))"
  }
}

/// Number formatting for the report.
enum Format {
  static func fixed(_ value: Double, _ digits: Int = 1) -> String {
    value.isNaN ? "–" : String(format: "%.\(digits)f", value)
  }

  static func thousands(_ value: Double) -> String {
    guard !value.isNaN else { return "–" }
    var digits = String(Int(value.rounded()))
    var groups: [String] = []
    while digits.count > 3 {
      groups.insert(String(digits.suffix(3)), at: 0)
      digits.removeLast(3)
    }
    groups.insert(digits, at: 0)
    return groups.joined(separator: " ")
  }

  static func ratio(_ value: Double) -> String { value.isNaN ? "–" : String(format: "%.2f×", value) }
}
