import Foundation
import Testing

@testable import KiamShared

@Suite struct MemoryTrimTests {
  /// Only read-only mappings of the executable and of shared libraries without private (modified)
  /// pages are released: never writable data, never relocated read-only data, never other files,
  /// deleted files or the heap.
  @Test func choosesOnlyCleanReadOnlyCodeMappings() {
    let smaps = """
      55c10daf5000-55c110bb3000 r-xp 00000000 08:01 123 /opt/kiam/bin/kiam
      Size:              50936 kB
      Rss:               27548 kB
      Anonymous:             0 kB
      55c110bb3000-55c110d00000 r--p 030bd000 08:01 123 /opt/kiam/bin/kiam
      Rss:                1332 kB
      Anonymous:          1332 kB
      55c110d00000-55c1132a6000 rw-p 0320d000 08:01 123 /opt/kiam/bin/kiam
      Anonymous:           120 kB
      55c1132a6000-55c11341f000 r--p 00000000 00:00 0
      Anonymous:             0 kB
      7feb7ea44000-7feb7eb9a000 r-xp 00028000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
      Anonymous:             0 kB
      7feb7eb9a000-7feb7ebed000 r--p 0017e000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
      Anonymous:             0 kB
      7feb7ebed000-7feb7ebf1000 r--p 001d0000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
      Anonymous:            16 kB
      7feb7ebf1000-7feb7ebf3000 rw-p 001d4000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
      Anonymous:             0 kB
      7feb7ec99000-7feb7ed9a000 r-xp 00099000 08:01 78 /usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30
      Anonymous:             0 kB
      7feb7ee00000-7feb7ee01000 r--p 00000000 08:01 79 /usr/lib/locale/C.utf8/LC_CTYPE
      Anonymous:             0 kB
      7feb7ee10000-7feb7ee11000 r--p 00000000 08:01 80 /usr/lib/x86_64-linux-gnu/libgone.so.1 (deleted)
      Anonymous:             0 kB
      7feb7ee20000-7feb7ee21000 r--p 00000000 08:01 81 /var/lib/kiam/also.sock
      Anonymous:             0 kB
      7feb7f000000-7feb7f001000 r--p 00000000 08:01 124 /opt/kiam/bin/kiam (deleted)
      Anonymous:             0 kB
      7ffd5a1f0000-7ffd5a1f2000 r-xp 00000000 00:00 0 [vdso]
      Anonymous:             0 kB
      """
    let chosen = MemoryTrimService.cleanCodeMappings(smaps: smaps, executable: "/opt/kiam/bin/kiam")
    #expect(chosen.map(\.start) == [0x55c1_0daf_5000, 0x7feb_7ea4_4000, 0x7feb_7eb9_a000, 0x7feb_7ec9_9000])
    #expect(chosen.first?.length == 0x55c1_10bb_3000 - 0x55c1_0daf_5000)
  }

  @Test func recognisesSharedLibraries() {
    for path in ["/usr/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/lib/libz.so"] {
      #expect(MemoryTrimService.isSharedLibrary(path), "\(path)")
    }
    for path in ["", "[vdso]", "libc.so.6", "/usr/lib/libc.so.6 (deleted)", "/srv/so/data", "/srv/file.sock"] {
      #expect(!MemoryTrimService.isSharedLibrary(path), "\(path)")
    }
  }

  /// Trimming the running test process releases code pages, and the code keeps running.
  @Test func trimmingKeepsTheProcessWorking() {
    let released = MemoryTrimService.trim()
    #expect(released > 0)
    // Code that ran before (and must fault back in) still gives the same answers.
    #expect(GoDuration.format(.seconds(90)) == "1m30s")
    #expect(MemoryTrimService.cleanCodeMappings(smaps: "", executable: "x").isEmpty)
  }

  /// After start-up, a trim happens once after each busy period, when the process is idle again,
  /// never during the busy period, and not again while it stays idle.
  @Test func trimsOnceAfterEachBusyPeriod() {
    var decision = MemoryTrimService.Decision(growth: 2 << 20)
    let idle = Duration.milliseconds(50)
    let periods: [(Duration, Bool)] = [
      (.milliseconds(5), false),  // idle since start-up: nothing new to give back
      (.milliseconds(900), false),  // busy: not now
      (.milliseconds(400), false),  // still busy
      (.milliseconds(10), true),  // idle again: trim
      (.milliseconds(10), false),  // still idle: once is enough
      (.milliseconds(50), false),  // at the threshold counts as busy
      (.milliseconds(0), true),
    ]
    for (index, (used, expected)) in periods.enumerated() {
      #expect(decision.next(used: used, idleCPU: idle, resident: 16 << 20) == expected, "period \(index)")
    }
  }

  /// While idle, growth over what the periodic work keeps resident (the largest size in the
  /// first periods after a trim) calls for a trim; growth inside those periods, below the
  /// threshold, or during busy periods does not.
  @Test func trimsWhenIdleGrowthPassesTheBaseline() {
    let mib = 1 << 20
    var decision = MemoryTrimService.Decision(growth: 2 * mib, settlePeriods: 3)
    let idle = Duration.milliseconds(50)
    let quiet = Duration.milliseconds(1)
    let periods: [(Duration, Int, Bool)] = [
      (quiet, 12 * mib, false),  // settling: baseline 12
      (quiet, 15 * mib, false),  // a 30 s refresh faults more in while settling: baseline 15
      (quiet, 14 * mib, false),  // settled, baseline 15
      (quiet, 16 * mib, false),  // +1 MiB: below the threshold
      (.milliseconds(200), 30 * mib, false),  // busy: never
      (quiet, 30 * mib, true),  // idle after busy: trim (and settle again)
      (quiet, 13 * mib, false),
      (quiet, 13 * mib, false),
      (quiet, 13 * mib, false),  // settled, baseline 13
      (quiet, 15 * mib - 1, false),
      (quiet, 15 * mib, true),  // a reconnect's handshake left 2 MiB behind: trim
      (quiet, 0, false),  // resident size unknown: no growth trims
      (quiet, 0, false),
      (quiet, 0, false),
      (quiet, 0, false),
    ]
    for (index, (used, resident, expected)) in periods.enumerated() {
      #expect(decision.next(used: used, idleCPU: idle, resident: resident) == expected, "period \(index)")
    }
  }

  @Test func readsTheResidentSizeFromStatm() {
    func pages(_ text: String) -> Int {
      Array(text.utf8).withUnsafeBufferPointer { MemoryTrimService.residentPages(statm: $0) }
    }
    #expect(pages("48213 4123 2911 12510 0 1577 0\n") == 4123)
    #expect(pages("48213 4123") == 4123)
    for malformed in ["", "48213", "48213 ", "48213 41x3 0", "1 99999999999999999999 0", "48213  4123 0"] {
      #expect(pages(malformed) == 0, "\(malformed)")
    }
    // This process: between 1 MiB and 4 GiB.
    let bytes = MemoryTrimService.residentBytes()
    #expect(bytes > 1 << 20 && bytes < 1 << 32)
  }

  @Test func cpuTimeCountsThisProcess() {
    let before = MemoryTrimService.cpuTime()
    var x: UInt64 = 1
    for i in 0..<20_000_000 { x = x &* 6_364_136_223_846_793_005 &+ UInt64(i) }
    #expect(x != 0)
    #expect(MemoryTrimService.cpuTime() > before)
  }
}
