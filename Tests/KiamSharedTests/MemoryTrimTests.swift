import Foundation
import Testing

@testable import KiamShared

@Suite struct MemoryTrimTests {
  /// Only read-only mappings of the executable without private (modified) pages are released:
  /// never writable data, never relocated read-only data, never other files or the heap.
  @Test func choosesOnlyCleanReadOnlyMappingsOfTheExecutable() {
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
      7feb7f000000-7feb7f001000 r--p 00000000 08:01 124 /opt/kiam/bin/kiam (deleted)
      Anonymous:             0 kB
      """
    let chosen = MemoryTrimService.cleanExecutableMappings(smaps: smaps, executable: "/opt/kiam/bin/kiam")
    #expect(chosen.count == 1)
    #expect(chosen.first?.start == 0x55c1_0daf_5000)
    #expect(chosen.first?.length == 0x55c1_10bb_3000 - 0x55c1_0daf_5000)
  }

  /// Trimming the running test process releases code pages, and the code keeps running.
  @Test func trimmingKeepsTheProcessWorking() {
    let released = MemoryTrimService.trim()
    #expect(released > 0)
    // Code that ran before (and must fault back in) still gives the same answers.
    #expect(GoDuration.format(.seconds(90)) == "1m30s")
    #expect(MemoryTrimService.cleanExecutableMappings(smaps: "", executable: "x").isEmpty)
  }

  /// After start-up, a trim happens once after each busy period, when the process is idle again,
  /// never during the busy period, and not again while it stays idle.
  @Test func trimsOnceAfterEachBusyPeriod() {
    var decision = MemoryTrimService.Decision()
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
      #expect(decision.next(used: used, idleCPU: idle) == expected, "period \(index)")
    }
  }

  @Test func cpuTimeCountsThisProcess() {
    let before = MemoryTrimService.cpuTime()
    var x: UInt64 = 1
    for i in 0..<20_000_000 { x = x &* 6364136223846793005 &+ UInt64(i) }
    #expect(x != 0)
    #expect(MemoryTrimService.cpuTime() > before)
  }
}

