import Foundation
import KiamTestSupport
import Testing

/// The seed's masters: the server and the agent on one host network, both with
/// `--prometheus-listen-addr` on the same port. Neither may stop serving credentials for it.
@Suite(.serialized) struct SharedMetricsPortTests {
  /// A listening socket holding a port, as the other process on the master would.
  final class PortHolder: @unchecked Sendable {
    private var descriptor: Int32
    init(port: Int) throws {
      descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var yes: Int32 = 1
      setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_port = in_port_t(UInt16(port).bigEndian)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
      guard bound == 0, listen(descriptor, 16) == 0 else { throw TestSupportError("cannot hold port \(port)") }
    }
    func release() {
      if descriptor >= 0 { close(descriptor) }
      descriptor = -1
    }
    deinit { release() }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func serverAndAgentShareAMetricsPortAndKeepServing() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      let port = h.metricsPort
      let holder = try PortHolder(port: port)
      defer { holder.release() }
      try await h.startServer(["--prometheus-listen-addr=127.0.0.1:\(port)"])
      // The harness's agent uses the same metrics address (--prometheus-listen-addr=127.0.0.1:metricsPort).
      try await h.startAgent()
      let server = try #require(h.server)
      let agent = try #require(h.agent)
      try await server.waitForStandardError(containing: "metrics endpoint unavailable")
      try await agent.waitForStandardError(containing: "metrics endpoint unavailable")

      // A pod gets its role through the agent and the server.
      #expect(
        await eventually(timeout: .seconds(15)) {
          (try? h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.0.1").body) == "app-web"
        })
      let credentials = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.0.0.1")
      #expect(credentials.status == 200, "\(credentials.body)")
      #expect(credentials.body.contains("\"AccessKeyId\":\"ASIA"))

      // Both say that metrics are down, without failing their health checks.
      let deep = try h.get("/health?deep=1")
      #expect(deep.status == 200, "\(deep.body)")
      #expect(deep.body.contains("warning: metrics endpoint down: cannot listen on 127.0.0.1:\(port)"), "\(deep.body)")
      #expect(deep.body.contains("warning: server: metrics endpoint down"), "\(deep.body)")
      #expect(deep.headers["x-kiam-warning"]?.contains("metrics endpoint down") == true)
      let probe = try await KiamProcess.run(
        ["health", "--server-address=127.0.0.1:\(h.serverPort)", "--timeout=5s"] + h.pki.server.arguments)
      #expect(probe.status == 0, "\(probe.stderr)")
      #expect(probe.stderr.contains("server warning: metrics endpoint down"), "\(probe.stderr)")

      // One error line each, however many retries (5 s apart) failed meanwhile.
      try await Task.sleep(for: .seconds(6))
      for process in [server, agent] {
        let lines = process.standardError.components(separatedBy: "\n").filter {
          $0.contains("metrics endpoint unavailable")
        }
        #expect(lines.count == 1, "\(lines)")
        #expect(process.isRunning)
      }

      // The port is freed: one of them takes it within a retry interval, and says so.
      holder.release()
      var page = ""
      #expect(
        await eventually(timeout: .seconds(8), interval: .milliseconds(200)) {
          page = (try? await HTTPGet.fetch("http://127.0.0.1:\(port)/metrics").body) ?? ""
          return page.contains("# TYPE kiam_")
        })
      let owner = server.standardError.contains("serving metrics") ? "server" : "agent"
      #expect(
        server.standardError.contains("serving metrics") != agent.standardError.contains("serving metrics"),
        "exactly one of them serves metrics")
      // The agent's deep health follows: its own warning is gone when it owns the port.
      let after = try h.get("/health?deep=1")
      #expect(after.status == 200)
      if owner == "agent" {
        #expect(!after.body.contains("warning: metrics endpoint down"), "\(after.body)")
        #expect(after.body.contains("warning: server: metrics endpoint down"), "\(after.body)")
      } else {
        #expect(!after.body.contains("server: metrics endpoint down"), "\(after.body)")
        #expect(after.body.contains("warning: metrics endpoint down"), "\(after.body)")
      }
    }
  }
}
