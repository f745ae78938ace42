import Testing

@testable import KiamAgent

/// The posix_spawn runner the iptables service uses, with real programs.
@Suite struct CommandRunnerTests {
  @Test func statusAndBothOutputs() async throws {
    let output = try await CommandRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
    #expect(output.status == 3)
    #expect(output.standardOutput == "out\n")
    #expect(output.standardError == "err\n")
    let ok = try await CommandRunner.run("/bin/sh", ["-c", "read line || echo stdin-is-empty"])
    #expect(ok.status == 0)
    #expect(ok.standardOutput == "stdin-is-empty\n")
  }

  @Test func largeOutputOnBothStreamsDoesNotStall() async throws {
    // 300 KB on each stream, far over a pipe's 64 KiB: read while the program runs.
    let output = try await CommandRunner.run(
      "/bin/sh", ["-c", "head -c 300000 /dev/zero; head -c 300000 /dev/zero >&2"])
    #expect(output.status == 0)
    #expect(output.standardOutput.utf8.count == 300_000)
    #expect(output.standardError.utf8.count == 300_000)
  }

  /// A program that hangs (some iptables-nft versions do) is killed at the deadline; what it wrote
  /// before is kept, and one that finishes in time is not touched.
  @Test func aHangingProgramIsKilledAtItsDeadline() async throws {
    let clock = ContinuousClock()
    let started = clock.now
    let hung = try await CommandRunner.run(
      "/bin/sh", ["-c", "echo started; exec sleep 30"], timeout: .milliseconds(300))
    #expect(hung.status == 128 + 9)
    #expect(hung.standardOutput == "started\n")
    #expect(clock.now - started < .seconds(5))
    let quick = try await CommandRunner.run("/bin/sh", ["-c", "echo done"], timeout: .seconds(5))
    #expect(quick.status == 0 && quick.standardOutput == "done\n")
  }

  @Test func signalsAndFailuresToStart() async throws {
    let killed = try await CommandRunner.run("/bin/sh", ["-c", "kill -9 $$"])
    #expect(killed.status == 128 + 9)
    await #expect(throws: (any Error).self) { try await CommandRunner.run("/nonexistent/iptables", []) }
    #expect(CommandRunner.find("sh") != nil)
    #expect(CommandRunner.find("sh", environment: ["PATH": "/nonexistent"]) == nil)
    #expect(CommandRunner.find("definitely-not-a-program-here") == nil)
  }
}
