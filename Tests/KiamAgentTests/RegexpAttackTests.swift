import Foundation
import KiamTestSupport
import Testing

/// Expressions that backtracked for seconds, each through real sockets: an agent's
/// `--allow-route-regexp` and a namespace's `iam.amazonaws.com/permitted` on a real server.
@Suite(.serialized) struct RegexpAttackTests {
  /// The 37-byte path of the issue: every `[a-z-]+/?` split of the a's is tried before `$` fails.
  static let path = "/latest/meta-data/" + String(repeating: "a", count: 18) + "!"

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func aBacktrackingRouteExpressionCannotFreezeTheAgent() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(allowRoutes: "^/latest/meta-data/([a-z-]+/?)*$")
      #expect(Self.path.utf8.count == 37)
      let clock = ContinuousClock()
      // Ten attacks in a row, and another pod's requests between them.
      var slowestAttack = Duration.zero
      var slowestOther = Duration.zero
      for _ in 0..<10 {
        let started = clock.now
        let attack = try h.get(Self.path)
        slowestAttack = max(slowestAttack, clock.now - started)
        #expect(
          attack.status == 404 && attack.body.hasPrefix("request blocked by allow-route-regexp"), "\(attack.body)")
        let other = clock.now
        #expect(try h.get("/ping").body == "pong")
        slowestOther = max(slowestOther, clock.now - other)
      }
      #expect(slowestAttack < .milliseconds(100), "an attack took \(slowestAttack)")
      #expect(slowestOther < .milliseconds(50), "another pod waited \(slowestOther)")
      // The expression still does its job.
      #expect(try h.get("/latest/meta-data/placement/availability-zone").status == 200)
    }
  }
}
