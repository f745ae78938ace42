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
  /// Seconds the process's threads spent runnable but waiting for a CPU (schedstat `run_delay`).
  var runQueueSeconds: Double = 0
  /// Times the process's threads were preempted (`nonvoluntary_ctxt_switches`).
  var preemptions: Int = 0
  /// Times the process's threads gave up the CPU to wait (`voluntary_ctxt_switches`).
  var sleeps: Int = 0

  /// The usage of `pid`, plus its children when `withChildren` (nginx's workers); the scheduler
  /// counters of every thread only when `scheduling` (they cost a read per thread).
  static func read(_ pid: Int32, withChildren: Bool = false, scheduling: Bool = false) -> ProcessUsage {
    var pids = [pid]
    if withChildren { pids += children(of: pid) }
    var total = ProcessUsage(rssMiB: 0, peakRSSMiB: 0, cpuSeconds: 0)
    for pid in pids {
      let status = read("/proc/\(pid)/status")
      func kib(_ field: String) -> Double { Self.field(field, in: status) ?? 0 }
      total.rssMiB += kib("VmRSS") / 1024
      total.peakRSSMiB += kib("VmHWM") / 1024
      total.anonymousMiB += kib("RssAnon") / 1024
      total.cpuSeconds += ProcStat.cpuSeconds(pid) ?? 0
      if scheduling { total.addScheduling(of: pid) }
    }
    return total
  }

  /// Adds the scheduler counters of every thread of `pid`.
  private mutating func addScheduling(of pid: Int32) {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    for task in tasks {
      let directory = "/proc/\(pid)/task/\(task)"
      // run time, run-queue delay (ns), time slices
      let schedstat = Self.read(directory + "/schedstat").split(whereSeparator: \.isWhitespace)
      if schedstat.count >= 2 { runQueueSeconds += (Double(schedstat[1]) ?? 0) / 1e9 }
      let status = Self.read(directory + "/status")
      preemptions += Int(Self.field("nonvoluntary_ctxt_switches", in: status) ?? 0)
      sleeps += Int(Self.field("voluntary_ctxt_switches", in: status) ?? 0)
    }
  }

  /// The number at the start of a `/proc/.../status` field (`VmRSS:\t  1234 kB` → 1234).
  private static func field(_ name: String, in status: String) -> Double? {
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
    return line.dropFirst(name.count + 1).split(whereSeparator: \.isWhitespace).first.flatMap { Double($0) }
  }

  private static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

  static func children(of parent: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap(Int32.init).filter { ProcStat.parent($0) == parent }
  }
}

/// A process's memory read once a second over a period.
struct MemorySeries {
  /// The sample with the median RSS.
  var median: ProcessUsage
  /// The sample with the largest RSS.
  var largest: ProcessUsage
  var count: Int

  /// Reads `pid` once a second for `seconds` seconds, the first at `start`.
  static func sample(_ pid: Int32, from start: ContinuousClock.Instant, seconds: Int) async throws -> MemorySeries {
    var samples: [ProcessUsage] = []
    for second in 0...seconds {
      try await Task.sleep(until: start + .seconds(second))
      samples.append(ProcessUsage.read(pid))
    }
    samples.sort { $0.rssMiB < $1.rssMiB }
    return MemorySeries(median: samples[samples.count / 2], largest: samples[samples.count - 1], count: samples.count)
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
