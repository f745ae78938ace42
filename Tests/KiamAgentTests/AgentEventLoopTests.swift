import Foundation
import KiamTestSupport
import Testing

/// The agent's process runs one event loop unless the operator sets
/// `NIO_SINGLETON_GROUP_LOOP_COUNT`; a bad value is one clear error. Real processes, no server.
@Suite struct AgentEventLoopTests {
  /// The agent's event-loop threads: NIO names them `NIO-SGLTN-<group>-#<n>` (its blocking pool's
  /// threads are `SGLTN-TP-#<n>`).
  static func eventLoopThreads(of pid: Int32) throws -> [String] {
    let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
    return tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
      .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
      .filter { $0.hasPrefix("NIO-SGLTN-") }
  }

  /// Starts an agent (no server reachable, which it starts without), checks it answers `/ping`
  /// and returns its event-loop threads.
  func agentEventLoops(loopCount: String?) async throws -> [String] {
    let directory = try TemporaryDirectory(prefix: "kiam-loops")
    defer { directory.remove() }
    let pki = try TestPKIFixture.make(in: directory.path)
    let port = try FreePort.next()
    var environment = ["HOME": directory.path, "PATH": "/usr/bin:/bin"]
    environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] = loopCount
    let agent = try KiamProcess(
      ["agent", "--host=127.0.0.1", "--port=\(port)", "--server-address=localhost:\(try FreePort.next())"]
        + pki.agent.arguments,
      environment: environment)
    return try await withCleanup({
      agent.signal(SIGTERM)
      _ = await agent.wait(timeout: .seconds(10))
    }) {
      try await FreePort.waitUntilListening(port)
      let ping = try HTTPExchange.send("GET", port: port, path: "/ping")
      #expect(ping.status == 200)
      return try Self.eventLoopThreads(of: agent.pid)
    }
  }

  @Test func oneEventLoopByDefault() async throws {
    let loops = try await agentEventLoops(loopCount: nil)
    #expect(loops.count == 1, "event-loop threads: \(loops)")
  }

  @Test func theOperatorChoosesMoreLoops() async throws {
    let loops = try await agentEventLoops(loopCount: "3")
    #expect(loops.count == 3, "event-loop threads: \(loops)")
  }

  @Test(arguments: ["0", "two", "2000", ""])
  func aBadLoopCountIsOneClearError(_ value: String) async throws {
    let directory = try TemporaryDirectory(prefix: "kiam-loops")
    defer { directory.remove() }
    let pki = try TestPKIFixture.make(in: directory.path)
    let result = try await KiamProcess.run(
      ["agent", "--host=127.0.0.1", "--port=\(try FreePort.next())", "--server-address=localhost:1"]
        + pki.agent.arguments,
      environment: ["HOME": directory.path, "NIO_SINGLETON_GROUP_LOOP_COUNT": value])
    #expect(result.status == 1)
    #expect(
      result.stderr
        == "kiam: error: NIO_SINGLETON_GROUP_LOOP_COUNT: \"\(value)\" is not a number of event loops from 1 to 1024\n")
  }
}
