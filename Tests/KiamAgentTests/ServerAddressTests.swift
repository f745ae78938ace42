import Foundation
import KiamTestSupport
import Testing

/// `--server-address` in every form kiam users write it, with a real agent and real servers:
/// IPv4 and IPv6 literals (the seed's health probe uses `127.0.0.1:443`), and names that resolve
/// to one or to many addresses (a headless Service).
@Suite(.serialized) struct ServerAddressTests {
  static let ipv6Loopback: Bool =
    ((try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)) ?? "")
    .contains("00000000000000000000000000000001")

  /// A name resolved from a private /etc/hosts needs a mount namespace (root).
  static let privateHostsReason: String? = {
    if let reason = NetworkNamespace.unavailableReason { return reason }
    if (try? Shell.run("unshare -m true"))?.status != 0 { return "unshare -m does not work here" }
    return nil
  }()

  /// Asks the agent for the role of `ip` until it answers 200 (the first request may come before
  /// the agent's first connection to the server is up).
  func roleOf(_ h: AgentHarness, ip: String = "10.0.0.1") async -> HTTPExchange? {
    var last: HTTPExchange?
    _ = await eventually(timeout: .seconds(15)) {
      last = try? h.get("/latest/meta-data/iam/security-credentials/", ip: ip)
      return last?.status == 200
    }
    return last
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func ipv4Literal() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(serverAddress: "127.0.0.1:\(h.serverPort)")
      let answer = await roleOf(h)
      #expect(answer?.status == 200, "\(answer?.body ?? "") \(h.agent?.standardError ?? "")")
      #expect(answer?.body == "app-web")
      let credentials = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.0.0.1")
      #expect(credentials.status == 200, "\(credentials.body)")
    }
  }

  @Test(
    .enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"),
    .enabled(if: ipv6Loopback, "no IPv6 loopback (::1) on this machine"))
  func ipv6Literal() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer(bind: "[::1]:\(h.serverPort)")
      try await h.startAgent(serverAddress: "[::1]:\(h.serverPort)")
      let answer = await roleOf(h)
      #expect(
        answer?.status == 200, "\(answer?.body ?? "") \(h.agent?.standardError ?? "") \(h.server?.standardError ?? "")")
      #expect(answer?.body == "app-web")
    }
  }

  /// A name of the node's resolver (`localhost`), as the harness uses everywhere else.
  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func nameFromTheSystemResolver() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(serverAddress: "localhost:\(h.serverPort)")
      #expect(await roleOf(h)?.body == "app-web")
    }
  }

  /// `kiam-server` with one address, and with three (two IPv4, one IPv6, as a headless Service
  /// of a dual-stack cluster): every server gets calls.
  @Test(
    .enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"),
    .enabled(if: privateHostsReason == nil, "needs root for a private /etc/hosts: \(privateHostsReason ?? "")"),
    arguments: [1, 3])
  func namesWithOneAndWithManyAddresses(_ count: Int) async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      let name = "kiam-server"
      let addresses = count == 1 ? ["127.0.0.1"] : ["127.0.0.1", "127.0.0.2"] + (Self.ipv6Loopback ? ["::1"] : [])
      var hosts = "127.0.0.1 localhost\n"
      for address in addresses { hosts += "\(address) \(name)\n" }
      let hostsFile = try h.directory.write("hosts", hosts)
      var spread = ""
      for index in 1...40 {
        spread += """
          ---
          apiVersion: v1
          kind: Pod
          metadata: {name: spread-\(index), namespace: apps, uid: uid-spread-\(index), annotations: {iam.amazonaws.com/role: app-spread-\(index)}}
          status: {phase: Running, podIP: 10.0.1.\(index)}

          """
      }
      _ = try h.directory.write("manifests/spread.yaml", spread)
      // One server per address, all on the same port, each with its own metrics port.
      var servers: [(process: KiamProcess, metrics: Int)] = []
      for address in addresses {
        let metrics = try FreePort.next()
        let bind = address.contains(":") ? "[\(address)]:\(h.serverPort)" : "\(address):\(h.serverPort)"
        try await h.startServer(["--prometheus-listen-addr=127.0.0.1:\(metrics)"], bind: bind)
        servers.append((h.server!, metrics))
      }
      defer { for server in servers { server.process.signal(SIGKILL) } }
      for server in servers { try await FreePort.waitUntilListening(server.metrics) }
      let agent = try KiamProcess(
        [
          "-m", "sh", "-c",
          "mount --bind \(hostsFile) /etc/hosts && exec \(KiamProcess.binaryPath) agent --host=127.0.0.1 --port=\(h.agentPort) "
            + "--server-address=\(name):\(h.serverPort) --metadata-endpoint=\(h.lab.endpoint) --allow-ip-query "
            + h.pki.agent.arguments.joined(separator: " "),
        ],
        executable: "/usr/bin/unshare")
      h.agent = agent
      try await FreePort.waitUntilListening(h.agentPort)
      #expect(await roleOf(h)?.body == "app-web", "\(agent.standardError)")
      // Forty distinct pods: forty role lookups, spread over every server.
      for index in 1...40 {
        let answer = try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.1.\(index)")
        #expect(answer.status == 200 && answer.body == "app-spread-\(index)", "\(answer.status) \(answer.body)")
      }
      var calls: [Double] = []
      for server in servers {
        let text = try await HTTPGet.fetch("http://127.0.0.1:\(server.metrics)/metrics").body
        let handled = try PrometheusText(text).samples.filter {
          $0.name == "grpc_server_handled_total" && $0.labels["grpc_method"] == "GetPodRole"
            && $0.labels["grpc_code"] == "OK"
        }
        calls.append(handled.reduce(0) { $0 + $1.value })
      }
      #expect(calls.reduce(0, +) >= 40, "\(calls)")
      #expect(calls.allSatisfy { $0 > 0 }, "calls per server: \(calls)")
    }
  }
}
