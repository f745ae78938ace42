public import ServiceLifecycle

#if canImport(Glibc)
  import Glibc
#endif

/// Gives back memory a long-running process touched once and no longer uses.
///
/// - **Start-up code pages.** Initialisation touches code all over the executable and the shared
///   libraries (TLS, gRPC, argument parsing, …), and the kernel maps neighbouring pages on every
///   fault (fault-around), so most of their text ends up resident although the steady-state paths
///   use a small part of it. Read-only mappings of the executable and of shared libraries that hold
///   no private (modified) pages are dropped with `MADV_DONTNEED`; pages still in use fault
///   straight back in from the page cache (other processes' mappings are not affected).
/// - **Free heap.** `malloc_trim` returns free memory of every malloc arena to the system.
///
/// Runs 10 s and 30 s after start-up (when start-up work has settled), then, as soon as the
/// process has been idle for `check` (less than `idleCPU` of CPU time), once after each busy
/// period and whenever rare work (a reconnect, a credentials refresh) has grown the resident
/// size by `growth` over what the periodic work keeps resident (see ``Decision``).
/// Never while the process is busy: the pages the work needs would fault straight back in, and
/// the faults would land on requests. A trim costs a few milliseconds.
public struct MemoryTrimService: Service {
  let startup: [Duration]
  let check: Duration
  let idleCPU: Duration
  let growth: Int

  /// - Parameters:
  ///   - startup: Delays of the unconditional start-up trims.
  ///   - check: How often the CPU time used is looked at afterwards.
  ///   - idleCPU: CPU time in one `check` period below which the process counts as idle.
  ///   - growth: Bytes of resident growth, while idle, that call for another trim.
  public init(
    startup: [Duration] = [.seconds(10), .seconds(20)], check: Duration = .seconds(10),
    idleCPU: Duration = .milliseconds(50), growth: Int = 2 << 20
  ) {
    self.startup = startup
    self.check = check
    self.idleCPU = idleCPU
    self.growth = growth
  }

  public func run() async throws {
    try? await cancelWhenGracefulShutdown {
      for delay in self.startup {
        try await Task.sleep(for: delay)
        Self.trim()
      }
      var decision = Decision(growth: self.growth)
      var last = Self.cpuTime()
      while true {
        try await Task.sleep(for: self.check)
        let now = Self.cpuTime()
        if decision.next(used: now - last, idleCPU: self.idleCPU, resident: Self.residentBytes()) { Self.trim() }
        last = Self.cpuTime()
      }
    }
  }

  /// CPU time (user + system) of this process so far.
  static func cpuTime() -> Duration {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return .zero }
    func duration(_ time: timeval) -> Duration {
      .seconds(Int64(time.tv_sec)) + .microseconds(Int64(time.tv_usec))
    }
    return duration(usage.ru_utime) + duration(usage.ru_stime)
  }

  /// The resident set size of this process in bytes (`/proc/self/statm`), 0 when unknown.
  /// Reads into a fixed buffer: the check runs every few seconds on an idle process, and should
  /// touch as little code as it can.
  static func residentBytes() -> Int {
    #if os(Linux)
      let fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { return 0 }
      defer { close(fd) }
      return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 128) { buffer in
        let count = Glibc.read(fd, buffer.baseAddress, buffer.count)
        guard count > 0 else { return 0 }
        return Self.residentPages(statm: UnsafeBufferPointer(rebasing: buffer[0..<count]))
          * Int(sysconf(Int32(_SC_PAGESIZE)))
      }
    #else
      return 0
    #endif
  }

  /// The second field of `statm` text (resident pages), 0 when malformed.
  static func residentPages(statm: UnsafeBufferPointer<UInt8>) -> Int {
    var field = 0
    var value = 0
    var digits = 0
    for byte in statm {
      if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
        if field == 1 { return digits > 0 ? value : 0 }
        field += 1
        continue
      }
      guard field == 1 else { continue }
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 18 else { return 0 }
      value = value * 10 + Int(byte - UInt8(ascii: "0"))
      digits += 1
    }
    return field == 1 && digits > 0 ? value : 0
  }

  /// Caps glibc's malloc arenas (one per thread by default, up to 8 per core). Call before
  /// threads start; the agent and the server have few threads, mostly event loops.
  public static func limitMallocArenas(_ count: Int32 = 2) {
    #if os(Linux)
      // <malloc.h> is not part of the Glibc module: look the function up.
      typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
      let mArenaMax: Int32 = -8
      guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
      _ = unsafeBitCast(symbol, to: Mallopt.self)(mArenaMax, count)
    #endif
  }

  /// Trims now; returns the bytes of code mappings released.
  @discardableResult
  public static func trim() -> Int {
    #if os(Linux)
      typealias MallocTrim = @convention(c) (Int) -> Int32
      if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") {
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
      }
      return releaseCodePages()
    #else
      return 0
    #endif
  }

  #if os(Linux)
    /// Mappings of `executable` and of shared libraries (`*.so*`) that are read-only and hold no
    /// anonymous (copied-on-write) pages, as (start, length). Never writable mappings, relocated
    /// read-only data, other files, deleted files or anonymous memory.
    static func cleanCodeMappings(smaps: String, executable: String) -> [(start: UInt, length: Int)] {
      var result: [(UInt, Int)] = []
      var current: (start: UInt, length: Int, eligible: Bool)?
      func flush() {
        if let mapping = current, mapping.eligible { result.append((mapping.start, mapping.length)) }
        current = nil
      }
      for line in smaps.split(separator: "\n") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard let first = fields.first else { continue }
        if first.contains("-"), fields.count >= 5, !first.hasSuffix(":") {
          flush()
          let range = first.split(separator: "-")
          guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16) else {
            continue
          }
          let permissions = fields[1]
          let path = fields.count >= 6 ? fields[5...].joined(separator: " ") : ""
          let readOnly =
            permissions.hasPrefix("r") && permissions.dropFirst().first == "-" && permissions.hasSuffix("p")
          current = (start, Int(end - start), readOnly && (path == executable || isSharedLibrary(path)))
        } else if first == "Anonymous:", fields.count >= 2, fields[1] != "0" {
          current?.eligible = false
        }
      }
      flush()
      return result
    }

    /// An absolute path whose file name has a `.so` suffix or version (`libc.so.6`).
    static func isSharedLibrary(_ path: String) -> Bool {
      guard path.hasPrefix("/"), !path.hasSuffix(" (deleted)"), let name = path.split(separator: "/").last else {
        return false
      }
      return name.hasSuffix(".so") || name.contains(".so.")
    }

    private static func releaseCodePages() -> Int {
      guard let smaps = read("/proc/self/smaps"), let executable = executablePath() else { return 0 }
      var released = 0
      for mapping in cleanCodeMappings(smaps: smaps, executable: executable) {
        guard let address = UnsafeMutableRawPointer(bitPattern: mapping.start) else { continue }
        if madvise(address, mapping.length, MADV_DONTNEED) == 0 { released += mapping.length }
      }
      return released
    }

    private static func executablePath() -> String? {
      var buffer = [CChar](repeating: 0, count: 4096)
      let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
      guard count > 0 else { return nil }
      return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func read(_ path: String) -> String? {
      let fd = open(path, O_RDONLY)
      guard fd >= 0 else { return nil }
      defer { close(fd) }
      var data: [UInt8] = []
      var chunk = [UInt8](repeating: 0, count: 65536)
      while true {
        let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        data.append(contentsOf: chunk[0..<count])
      }
      return String(decoding: data, as: UTF8.self)
    }
  #endif
}
