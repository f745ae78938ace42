import Foundation

/// Fields of `/proc/PID/stat` that tests and benchmarks read.
public enum ProcStat {
  /// The fields after `(comm)`: index 0 is the state, 1 the parent pid, 11 utime, 12 stime.
  static func fields(_ pid: Int32) -> [Substring]? {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return nil }
    return stat[stat.index(after: close)...].split(separator: " ")
  }

  /// User plus system CPU seconds of `pid`, nil when it cannot be read.
  public static func cpuSeconds(_ pid: Int32) -> Double? {
    guard let fields = fields(pid), fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12])
    else { return nil }
    return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
  }

  /// The parent pid of `pid`.
  public static func parent(_ pid: Int32) -> Int32? {
    guard let fields = fields(pid), fields.count > 2 else { return nil }
    return Int32(fields[1])
  }
}
