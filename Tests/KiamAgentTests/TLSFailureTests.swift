import Foundation
import KiamTestSupport
import Testing

/// A TLS failure between agent and server is named: in the agent's `/health?deep` and 500
/// bodies, in the log, in `kiam_tls_handshake_failures_total{side,reason}` on both ends, and in
/// the verify-error gauge (it stayed 0, and the bodies said only `DeadlineExceeded`). Real server
/// and agent processes; the server's certificate or the agent's is wrong in one way each.
@Suite(.serialized) struct TLSFailureTests {
  struct Case: Sendable, CustomTestStringConvertible {
    let name: String
    /// The reason the agent names, and the reason the server counts (nil: the server sees nothing
    /// it can name).
    let agentReason: String
    let serverReason: String?
    /// Server certificate (from the fixture's CA unless `otherCA`), and whether the agent's
    /// certificate comes from another CA.
    let serverLeaf: @Sendable (TestCA) throws -> TestLeaf
    let serverFromOtherCA: Bool
    let agentFromOtherCA: Bool
    var testDescription: String { name }
  }

  static let goodServer: @Sendable (TestCA) throws -> TestLeaf = {
    try $0.issue(commonName: "kiam-server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"])
  }

  static let cases: [Case] = [
    Case(
      name: "server certificate from another CA", agentReason: "unknown_ca", serverReason: "rejected_by_peer",
      serverLeaf: goodServer, serverFromOtherCA: true, agentFromOtherCA: false),
    Case(
      name: "expired server certificate", agentReason: "expired", serverReason: "rejected_by_peer",
      serverLeaf: {
        try $0.issue(commonName: "kiam-server", dnsNames: ["localhost"], validFrom: -7200, validFor: 3600)
      },
      serverFromOtherCA: false, agentFromOtherCA: false),
    Case(
      name: "server certificate for another name", agentReason: "wrong_name", serverReason: "rejected_by_peer",
      serverLeaf: { try $0.issue(commonName: "kiam-server", dnsNames: ["kiam-server.other"]) },
      serverFromOtherCA: false, agentFromOtherCA: false),
    Case(
      name: "agent certificate from another CA", agentReason: "rejected_by_peer", serverReason: "unknown_ca",
      serverLeaf: goodServer, serverFromOtherCA: false, agentFromOtherCA: true),
  ]

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"), arguments: cases)
  func aTLSFailureIsNamed(_ testCase: Case) async throws {
    let h = try await AgentHarness()
    let dir = try TemporaryDirectory()
    try await withCleanup({
      await h.stop()
      dir.remove()
    }) {
      let other = try TestCA(name: "some-other-ca")
      let serverCA = testCase.serverFromOtherCA ? other : h.pki.ca
      let server = try TestTLSFiles.write(try testCase.serverLeaf(serverCA), ca: h.pki.ca, name: "server", in: dir.path)
      let serverMetrics = try FreePort.next()
      try await h.startServer(server.arguments + ["--prometheus-listen-addr=127.0.0.1:\(serverMetrics)"])
      var agentExtra: [String] = []
      if testCase.agentFromOtherCA {
        let agent = try TestTLSFiles.write(
          try other.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: h.pki.ca, name: "agent", in: dir.path)
        agentExtra = agent.arguments
      }
      try await h.startAgent(agentExtra)

      let deep = try h.get("/health?deep=1")
      #expect(deep.status == 500)
      #expect(deep.body.contains("TLS \(testCase.agentReason)"), "\(testCase.name): \(deep.body)")
      let credentials = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.0.0.1")
      #expect(
        credentials.status == 500 && credentials.body.contains("TLS \(testCase.agentReason)"), "\(credentials.body)")
      #expect(h.agent?.standardError.contains("TLS handshake with a peer failed") == true)

      let agentSamples = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(h.metricsPort)/metrics"))
      #expect(
        (agentSamples.value("kiam_tls_handshake_failures_total", ["side": "client", "reason": testCase.agentReason])
          ?? 0) >= 1,
        "\(testCase.name): agent counters")
      #expect(agentSamples.value("grpc_client_tls_certificate_verify_error", [:]) == 1)
      if let serverReason = testCase.serverReason {
        #expect(
          await eventually {
            let text = (try? await HTTPGet.text("http://127.0.0.1:\(serverMetrics)/metrics")) ?? ""
            return
              ((try? PrometheusText(text))?.value(
                "kiam_tls_handshake_failures_total", ["side": "server", "reason": serverReason]) ?? 0) >= 1
          }, "\(testCase.name): server counters")
      }
    }
  }

  /// No server at all: the body says nothing is reachable at the address, not a bare deadline.
  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func noServerIsNamed() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startAgent()
      let deep = try h.get("/health?deep=1")
      #expect(
        deep.status == 500 && deep.body.contains("no kiam server reachable at localhost:\(h.serverPort)"),
        "\(deep.body)")
      let samples = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(h.metricsPort)/metrics"))
      #expect(samples.value("grpc_client_tls_certificate_verify_error", [:]) == 0)
    }
  }
}
