import Foundation
import KiamTestSupport
import Testing

/// The Cluster API cross-account guide's manifests (kiam v3.2), run as they are written with only
/// the image swapped: on a master, the server DaemonSet and the agent DaemonSet side by side on the
/// host network, both with `--prometheus-listen-addr=0.0.0.0:9620`; the agent reaching
/// `kiam-server:443` by name, the probes reaching `127.0.0.1:443`; pods on `cali+` interfaces; the
/// server detecting its role base ARN and chaining through `kiam_server`. The one change: STS is
/// moto (`--sts-endpoint`), as nothing here can reach sts.amazonaws.com.
@Suite(.serialized) struct SeedScenarioTests {
  /// The server's args from the guide's server.yaml, with the paths of this node.
  static func serverArguments(_ pki: TestPKIFixture) -> [String] {
    [
      "server", "--json-log", "--level=warn", "--bind=0.0.0.0:443",
      "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
      "--role-base-arn-autodetect", "--assume-role-arn=arn:aws:iam::123456789012:role/kiam_server",
      "--sync=1m", "--prometheus-listen-addr=0.0.0.0:9620", "--prometheus-sync-interval=5s",
    ]
  }

  /// The agent's args from the guide's agent.yaml.
  static func agentArguments(_ pki: TestPKIFixture) -> [String] {
    [
      "agent", "--iptables", "--host-interface=cali+", "--json-log", "--port=8181",
      "--cert=\(pki.agent.certificate)", "--key=\(pki.agent.key)", "--ca=\(pki.agent.ca)",
      "--server-address=kiam-server:443", "--prometheus-listen-addr=0.0.0.0:9620", "--prometheus-sync-interval=5s",
      "--gateway-timeout-creation=1s",
    ]
  }

  /// The liveness and readiness probes of server.yaml.
  static func probeArguments(_ pki: TestPKIFixture) -> [String] {
    [
      "health", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
      "--server-address=127.0.0.1:443", "--gateway-timeout-creation=1s", "--timeout=5s",
    ]
  }

  @Test(.enabled(if: E2EEnvironment.unavailableReason == nil, "\(E2EEnvironment.unavailableReason ?? "")"))
  func theGuidesManifestsWorkWithOnlyTheImageSwapped() async throws {
    let env = try await E2EEnvironment(podInterfacePrefix: "cali")
    try await withCleanup({ await env.tearDown() }) {
      let auth = try #require(env.auth)
      env.api.upsertNamespace(TestNamespace(name: "aws-provider-system", permitted: ".*"))
      // The headless Service kiam-server resolves to the master's address.
      let hosts = try env.directory.write("hosts", "127.0.0.1 localhost\n\(env.lab.nodeIP) kiam-server\n")
      let server = try env.startInNode(
        Self.serverArguments(env.pki) + [
          "--kubeconfig=\(env.kubeconfig)", "--sts-endpoint=\(E2EEnvironment.stsEndpoint)",
        ],
        environment: ["AWS_ACCESS_KEY_ID": auth.AccessKeyId, "AWS_SECRET_ACCESS_KEY": auth.SecretAccessKey])
      env.server = server
      let agent = try env.startInNode(
        Self.agentArguments(env.pki), environment: ["HOST_IP": env.lab.nodeIP], hosts: hosts)
      env.agent = agent
      #expect(try await env.waitForNode(port: 8181), "\(agent.standardError)")

      // The probes, exactly as the manifest runs them (an IP literal, like the agent's address
      // would be with `--server-address=10.0.0.5:443`).
      var probe = (status: Int32(-1), output: "")
      let healthy = await eventually(timeout: .seconds(30), interval: .milliseconds(500)) {
        probe =
          (try? env.lab.run(
            onNode: ([KiamProcess.binaryPath] + Self.probeArguments(env.pki)).map(Shell.quote).joined(separator: " ")
              + " 2>&1")) ?? (-1, "")
        return probe.status == 0
      }
      #expect(healthy, "kiam health: \(probe.output) server: \(server.standardError)")

      // The CAPA controller in the target account's role, through kiam_server.
      try env.addCAPAControllerPod()
      #expect(try env.callerIdentity("capa") == "arn:aws:sts::999999999999:assumed-role/cluster-api/kiam-kiam")
      #expect(try env.boto3("capa")["method"] as? String == "iam-role")
      let stats = try await env.sts.stats()
      #expect(stats.calls("arn:aws:iam::123456789012:role/kiam_server") >= 1)

      // Both kept running, one of them serves metrics on the shared port, the other says why not.
      #expect(server.isRunning && agent.isRunning)
      let metrics = try env.lab.run(onNode: "curl -s http://127.0.0.1:9620/metrics").output
      #expect(metrics.contains("# TYPE kiam_"), "\(metrics.prefix(300))")
      let unavailable = [server, agent].filter { $0.standardError.contains("metrics endpoint unavailable") }
      #expect(unavailable.count == 1, "\(server.standardError)\n\(agent.standardError)")
      // The rule went to the backend the agent chose (and said which).
      let backend = ["nft", "legacy"].first { agent.standardError.contains("iptables backend: \($0)") }
      let chosen = try #require(backend, "\(agent.standardError)")
      #expect(try env.lab.run(onNode: "iptables-\(chosen) -t nat -S PREROUTING").output.contains("-i cali+"))
    }
  }
}
