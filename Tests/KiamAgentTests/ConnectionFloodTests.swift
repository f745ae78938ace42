import Foundation
import KiamTestSupport
import Testing

/// The agent's own share of the defence against one pod's connections (the kernel's share, the
/// per-pod rate of new connections, is in `ConnectionFloodE2ETests`): a per-source cap far below
/// the total, a first-byte deadline, and at the cap the source's longest-idle connection makes
/// room. Real agent process; the misbehaving pod is 127.0.0.2, the other pod 127.0.0.1. A pod
/// that reconnects the moment it is closed needs the kernel's share too: on loopback, without the
/// rule, 5,000 silent connections still left the other pod p99 1.4 s.
@Suite(.serialized) struct ConnectionFloodTests {
  /// A connection that sends nothing is closed after the first-byte deadline (3 s), not the
  /// 90 s idle timeout; one that has asked keeps the idle timeout.
  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func aSilentConnectionIsClosedAfterTheFirstByteDeadline() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()
      let clock = ContinuousClock()
      let started = clock.now
      let silent = try RawSocket(source: "127.0.0.2", port: h.agentPort, receiveTimeout: 10)
      let asked = try RawSocket(source: "127.0.0.2", port: h.agentPort, receiveTimeout: 10)
      try asked.send("GET /ping HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
      #expect(asked.receiveResponse().hasSuffix("pong"))
      #expect(silent.isClosedByPeer())
      let closedAfter = clock.now - started
      #expect(closedAfter > .milliseconds(2500) && closedAfter < .seconds(5), "closed after \(closedAfter)")
      try asked.send("GET /ping HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
      #expect(asked.receiveResponse().hasSuffix("pong"))
    }
  }

  /// At `--max-connections-per-ip`, a new connection closes the source's connection that has
  /// waited longest for a request; one busy with a request is never closed, and when all are
  /// busy the new one is refused. Other sources are untouched.
  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func atTheCapTheLongestIdleConnectionMakesRoom() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(["--max-connections-per-ip=3"])
      func request(_ socket: RawSocket) throws -> String {
        try socket.send("GET /ping HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
        return socket.receiveResponse()
      }
      let other = try RawSocket(host: "127.0.0.1", port: h.agentPort)
      #expect(try request(other).hasSuffix("pong"))
      // Three idle keep-alive connections from 127.0.0.2, oldest first; one of them busy with a
      // request head still arriving.
      let a = try RawSocket(source: "127.0.0.2", port: h.agentPort)
      #expect(try request(a).hasSuffix("pong"))
      try await Task.sleep(for: .milliseconds(50))
      let busy = try RawSocket(source: "127.0.0.2", port: h.agentPort)
      try busy.send("GET /ping HTTP/1.1\r\n")
      try await Task.sleep(for: .milliseconds(50))
      let b = try RawSocket(source: "127.0.0.2", port: h.agentPort)
      #expect(try request(b).hasSuffix("pong"))
      // A fourth: `a` (idle longest) goes, the busy one stays.
      let c = try RawSocket(source: "127.0.0.2", port: h.agentPort)
      #expect(try request(c).hasSuffix("pong"))
      #expect(a.isClosedByPeer())
      try busy.send("Host: 169.254.169.254\r\n\r\n")
      #expect(busy.receiveResponse().hasSuffix("pong"))
      #expect(try request(b).hasSuffix("pong"))
      #expect(try request(other).hasSuffix("pong"))
    }
  }
}
