#if canImport(Glibc)
  import Glibc
#endif

/// The standard Prometheus `process_*` metrics (as Go's client emits them), read from `/proc`
/// when `/metrics` is scraped.
public enum ProcessMetrics {
  /// One reading of the process' resources.
  public struct Snapshot: Sendable {
    public var cpuSeconds: Double
    public var residentBytes: Double
    public var virtualBytes: Double
    public var openFDs: Double
    public var maxFDs: Double
    public var startTimeSeconds: Double
  }

  /// Reads `/proc/self/stat`, `/proc/stat` and `/proc/self/fd`. Nil where `/proc` is unavailable.
  public static func snapshot() -> Snapshot? {
    guard let stat = readFile("/proc/self/stat") else { return nil }
    // Fields after the parenthesised command name; it may itself contain spaces.
    guard let close = stat.lastIndex(of: ")") else { return nil }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    // fields[0] is field 3 (state); field N is fields[N - 3].
    func field(_ n: Int) -> Double { n - 3 < fields.count ? Double(fields[n - 3]) ?? 0 : 0 }
    let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
    let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
    var bootTime = 0.0
    if let procStat = readFile("/proc/stat") {
      for line in procStat.split(separator: "\n") where line.hasPrefix("btime ") {
        bootTime = Double(line.dropFirst(6).trimmingPrefix(" ")) ?? 0
      }
    }
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Snapshot(
      cpuSeconds: (field(14) + field(15)) / ticks,
      residentBytes: field(24) * pageSize,
      virtualBytes: field(23),
      openFDs: Double(countOpenFDs()),
      maxFDs: Double(limit.rlim_cur),
      startTimeSeconds: bootTime + field(22) / ticks
    )
  }

  /// The snapshot in Prometheus text format.
  public static func exposition() -> String {
    guard let s = snapshot() else { return "" }
    func format(_ v: Double) -> String {
      v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
    var out = ""
    func metric(_ name: String, _ type: String, _ help: String, _ value: Double) {
      out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(format(value))\n"
    }
    metric("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.", s.cpuSeconds)
    metric("process_max_fds", "gauge", "Maximum number of open file descriptors.", s.maxFDs)
    metric("process_open_fds", "gauge", "Number of open file descriptors.", s.openFDs)
    metric("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", s.residentBytes)
    metric(
      "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.",
      s.startTimeSeconds)
    metric("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", s.virtualBytes)
    return out
  }

  /// Reads a small file (as under `/proc`) without Foundation.
  static func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n <= 0 { break }
      bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
  }

  private static func countOpenFDs() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return 0 }
    defer { closedir(dir) }
    var count = 0
    while let entry = readdir(dir) {
      let first = entry.pointee.d_name.0
      if first != UInt8(ascii: ".") { count += 1 }
    }
    return max(0, count - 1)  // minus the directory handle itself
  }
}
