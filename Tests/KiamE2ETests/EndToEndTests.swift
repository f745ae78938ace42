import Foundation
import KiamTestSupport
import Testing

/// The whole path as it runs on a node: packets to 169.254.169.254 from a pod's own network
/// namespace, DNAT by the agent's own iptables rule, the agent, the server over mutual TLS,
/// STS (moto, signatures checked) and unmodified AWS clients in the pod. Root only.
@Suite(.serialized, .enabled(if: E2EEnvironment.unavailableReason == nil, "\(E2EEnvironment.unavailableReason ?? "")"))
struct EndToEndTests {
  static let permitted = "arn:aws:iam::(123456789012|999999999999):role/.*"

  func setUp(agent agentFlags: [String] = []) async throws -> E2EEnvironment {
    let env = try await E2EEnvironment()
    env.api.upsertNamespace(TestNamespace(name: "apps", permitted: Self.permitted))
    env.api.upsertNamespace(TestNamespace(name: "locked"))
    env.api.upsertNamespace(TestNamespace(name: "aws-provider-system", permitted: ".*"))
    env.api.upsertPod(TestPod(namespace: "kube-system", name: "node-exporter", ip: env.lab.nodeIP, hostNetwork: true))
    try await env.startServer()
    try await env.startAgent(agentFlags)
    return env
  }

  /// IMDSv2 tokens outlive the agent process: SDKs that cache theirs (Go v1 for its TTL, Go v2,
  /// Ruby) keep working when the agent restarts, and botocore as before. One client process per
  /// SDK in the pod, fetching before and after the restart; with `--require-imdsv2` too, where a
  /// token the new agent could not check would be a 401.
  @Test(
    .enabled(if: E2EEnvironment.sdkUnavailableReason == nil, "\(E2EEnvironment.sdkUnavailableReason ?? "")"),
    arguments: [[String](), ["--require-imdsv2"]])
  func sdksKeepWorkingAcrossAnAgentRestart(_ flags: [String]) async throws {
    let agentFlags = flags + ["--prometheus-listen-addr=127.0.0.1:9620"]
    let env = try await setUp(agent: agentFlags)
    try await withCleanup({ await env.tearDown() }) {
      let ip = try env.lab.addPod("sdk")
      env.api.upsertPod(TestPod(namespace: "apps", name: "sdk", ip: ip, role: "app-sdk"))
      let arn = "arn:aws:sts::123456789012:assumed-role/app-sdk/kiam-kiam"
      let clients = try SDKClient.Kind.allCases.map {
        try SDKClient($0, prefix: env.lab.podPrefix("sdk", environment: ["STS_ENDPOINT": E2EEnvironment.stsEndpoint]))
      }
      defer { for client in clients { client.stop() } }
      for client in clients {
        let first = try await client.fetch()
        #expect(
          first["error"] == nil && first["arn"] == arn,
          "\(client.name) before the restart: \(first) \(client.standardError)")
      }
      env.agent?.signal(SIGTERM)
      #expect(await env.agent?.wait(timeout: .seconds(10)) == 0)
      try await env.startAgent(agentFlags)
      for client in clients {
        let second = try await client.fetch()
        #expect(
          second["error"] == nil && second["arn"] == arn,
          "\(client.name) after the restart: \(second) \(client.standardError) \(env.agent?.standardError ?? "")")
      }
      // No token was refused or even failed its check.
      let metrics = try env.lab.run(onNode: "curl -s http://127.0.0.1:9620/metrics").output
      #expect(metrics.contains("# TYPE kiam_metadata_responses_total"), "\(metrics.prefix(200))")
      #expect(!metrics.contains("code=\"401\""), "\(metrics.split(separator: "\n").filter { $0.contains("401") })")
      #expect(!metrics.contains("kiam_agent_imds_token_rejected_total{"))
    }
  }

  /// SDKs that cannot be installed here (Java v2, JS v3, Rust, Kotlin), replayed by the rules read
  /// from their sources (scripts/test/sdk/replay/sdks.json): the extended path first and the
  /// legacy one on 404 (remembered by Java, Rust and Kotlin, not by JS), their token caching and
  /// TTL header, role-name reading and field checks; from pod namespaces through the DNAT rule,
  /// every request within the SDKs' 1 s timeout. A pod with a role; a pod whose role is added
  /// after its SDK found none (so the sticky ones go on with the legacy path); an agent restart
  /// in between, under SDKs that cache their token and never drop it on 401 (Rust, Kotlin).
  @Test func replayedSDKsFollowTheSequencesOfTheirSources() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      let replayIP = try env.lab.addPod("replay")
      env.api.upsertPod(TestPod(namespace: "apps", name: "replay", ip: replayIP, role: "app-replay"))
      let lateIP = try env.lab.addPod("late")
      let late = TestPod(namespace: "apps", name: "late", ip: lateIP)
      env.api.upsertPod(late)
      let environment = ["STS_ENDPOINT": E2EEnvironment.stsEndpoint]
      let sdks = SDKClient.replayedSDKs
      let withRole = try sdks.map {
        try SDKClient(replaying: $0, prefix: env.lab.podPrefix("replay", environment: environment))
      }
      let lateRole = try sdks.map {
        try SDKClient(replaying: $0, prefix: env.lab.podPrefix("late", environment: environment))
      }
      defer { for client in withRole + lateRole { client.stop() } }
      func requests(_ answer: [String: String]) -> [String] {
        (answer["requests"] ?? "").split(separator: "\n").map(String.init)
      }
      func expectServed(_ client: SDKClient, _ sdk: String, _ scenario: String, role: String, accountID: Bool)
        async throws
      {
        let answer = try await client.fetch()
        let arn = "arn:aws:sts::123456789012:assumed-role/\(role)/kiam-kiam"
        #expect(
          answer["error"] == nil && answer["arn"] == arn,
          "\(client.name) \(scenario): \(answer) \(client.standardError)")
        #expect(answer["account_id"] == (accountID ? "123456789012" : nil), "\(client.name) \(scenario): \(answer)")
        #expect(
          requests(answer) == (try SDKClient.replaySequence(sdk, scenario, role: role)), "\(client.name) \(scenario)")
      }

      for (sdk, client) in zip(sdks, withRole) {
        try await expectServed(client, sdk, "first", role: "app-replay", accountID: true)
        try await expectServed(client, sdk, "refresh", role: "app-replay", accountID: true)
      }
      for (sdk, client) in zip(sdks, lateRole) {
        let answer = try await client.fetch()
        #expect(answer["error"]?.contains("no instance profile") == true, "\(client.name): \(answer)")
        #expect(requests(answer) == (try SDKClient.replaySequence(sdk, "no_role", role: "")), "\(client.name) no_role")
      }
      // The role is added, and the agent restarts (a pod it has checked keeps its answer for up to
      // 5 minutes, docs/security.md; a new agent asks the server at once).
      var annotated = late
      annotated.annotations["iam.amazonaws.com/role"] = "app-late"
      env.api.upsertPod(annotated)
      env.agent?.signal(SIGTERM)
      #expect(await env.agent?.wait(timeout: .seconds(10)) == 0)
      try await env.startAgent()
      for (sdk, client) in zip(sdks, withRole) {
        try await expectServed(client, sdk, "refresh", role: "app-replay", accountID: true)
      }
      for (sdk, client) in zip(sdks, lateRole) {
        // Only JS, which forgets the API version, is back on the extended path (with AccountId).
        try await expectServed(client, sdk, "role_added", role: "app-late", accountID: sdk == "js-v3")
      }
    }
  }

  @Test func podsGetTheirOwnRolesOthersNothingAndForbiddenIsReported() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      let webIP = try env.lab.addPod("web")
      let batchIP = try env.lab.addPod("batch")
      let plainIP = try env.lab.addPod("plain")
      let lockedIP = try env.lab.addPod("locked")
      env.api.upsertPod(TestPod(namespace: "apps", name: "web", ip: webIP, role: "app-web"))
      env.api.upsertPod(TestPod(namespace: "apps", name: "batch", ip: batchIP, role: "app-batch"))
      env.api.upsertPod(TestPod(namespace: "apps", name: "plain", ip: plainIP))
      env.api.upsertPod(TestPod(namespace: "locked", name: "db", ip: lockedIP, role: "app-db"))

      // A permitted role: boto3 with no endpoint override, the CLI, and the raw IMDSv2 flow.
      let boto = try env.boto3("web")
      #expect(boto["method"] as? String == "iam-role", "\(boto)")
      #expect((boto["access_key"] as? String)?.hasPrefix("ASIA") == true)
      #expect(try env.callerIdentity("web") == "arn:aws:sts::123456789012:assumed-role/app-web/kiam-kiam")
      #expect(try env.callerIdentity("batch") == "arn:aws:sts::123456789012:assumed-role/app-batch/kiam-kiam")
      let flow = try env.curlFlow("web")
      #expect(flow.token.hasPrefix("kiam1."))
      #expect(flow.list == (200, "app-web"))
      #expect(flow.credentials.0 == 200)
      #expect(flow.credentials.1.contains("\"Code\":\"Success\""))

      // No annotation: no credentials, and the SDK moves on quickly.
      let clock = ContinuousClock()
      let started = clock.now
      let none = try env.boto3("plain")
      #expect(none["error"] as? String == "no credentials", "\(none)")
      #expect(clock.now - started < .seconds(5))
      #expect(try env.curlFlow("plain").list == (404, "empty role"))

      // A namespace that permits nothing: kiam's status and body, and an Event on the pod.
      let forbidden = try env.curlFlow("locked", role: "app-db")
      #expect(forbidden.credentials == (500, "error fetching credentials: forbidden by policy"))
      #expect(
        await eventually(timeout: .seconds(15)) {
          env.api.recordedEvents.contains { $0.reason == "KiamRoleForbidden" && $0.involvedName == "db" }
        })
      // Asking for another pod's role: 404, nothing else.
      #expect(try env.curlFlow("web", role: "app-batch").credentials.0 == 404)

      // Ready as a readiness probe sees it: the rule is in place and a server answers.
      let ready = try env.lab.run(
        onNode: "curl -s -w '\\n%{http_code}' http://\(env.lab.nodeIP):\(env.agentPort)/health?deep=1")
      #expect(ready.output.hasSuffix("\n200"), "\(ready.output)")

      // A host-network caller (the node itself) is refused, not given a role.
      let host = try env.lab.run(
        onNode:
          "curl -s -w '\\n%{http_code}' http://\(env.lab.nodeIP):\(env.agentPort)/latest/meta-data/iam/security-credentials/"
      )
      #expect(host.output.contains("uses the host network"), "\(host.output)")
      #expect(host.output.hasSuffix("500"))
    }
  }

  @Test func concurrentPodsNeverSeeEachOthersCredentials() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      let aIP = try env.lab.addPod("a")
      let bIP = try env.lab.addPod("b")
      env.api.upsertPod(TestPod(namespace: "apps", name: "a", ip: aIP, role: "app-a"))
      env.api.upsertPod(TestPod(namespace: "apps", name: "b", ip: bIP, role: "app-b"))
      func loop(_ role: String) -> String {
        "for i in $(seq 1 300); do curl -s --max-time 2 http://169.254.169.254/latest/meta-data/iam/security-credentials/\(role) | sed -n 's/.*\"AccessKeyId\":\"\\([A-Z0-9]*\\)\".*/\\1/p'; done | sort | uniq -c"
      }
      let aLoop = loop("app-a")
      let bLoop = loop("app-b")
      async let aKeys = Task.detached { try env.lab.run(inPod: "a", aLoop).output }.value
      async let bKeys = Task.detached { try env.lab.run(inPod: "b", bLoop).output }.value
      let a = try await aKeys
      let b = try await bKeys
      func keys(_ text: String) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in text.split(separator: "\n") {
          let parts = line.split(separator: " ")
          if parts.count == 2, let n = Int(parts[0]) { out[String(parts[1])] = n }
        }
        return out
      }
      let aSet = keys(a)
      let bSet = keys(b)
      #expect(aSet.values.reduce(0, +) == 300, "\(a)")
      #expect(bSet.values.reduce(0, +) == 300, "\(b)")
      #expect(Set(aSet.keys).isDisjoint(with: Set(bSet.keys)))
      #expect(try env.callerIdentity("a") == "arn:aws:sts::123456789012:assumed-role/app-a/kiam-kiam")
      #expect(try env.callerIdentity("b") == "arn:aws:sts::123456789012:assumed-role/app-b/kiam-kiam")
    }
  }

  /// Pod A is deleted and pod B starts with A's IP; B gets B's role or nothing, never A's.
  @Test(arguments: ["deleteThenAdd", "addThenDelete", "bSeenLate"])
  func ipReuseNeverHandsOutThePreviousPodsRole(_ order: String) async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      let ip = try env.lab.addPod("old")
      env.api.upsertPod(TestPod(namespace: "apps", name: "old", ip: ip, role: "app-old"))
      let oldFlow = try env.curlFlow("old")
      #expect(oldFlow.list == (200, "app-old"))
      let oldKey = oldFlow.credentials.1
      // The old pod goes away; the new one comes up with the same IP (a new veth and MAC).
      env.lab.removePod("old")
      try env.lab.addPod("new", ip: ip)
      func check(_ step: String) throws {
        let flow = try env.curlFlow("new")
        #expect(flow.list.1 != "app-old", "\(order) \(step): the old role was served")
        #expect(!flow.credentials.1.contains("app-old"))
        if flow.credentials.0 == 200 { #expect(flow.credentials.1 != oldKey, "\(order) \(step): old credentials") }
      }
      switch order {
      case "deleteThenAdd":
        env.api.deletePod(namespace: "apps", name: "old")
        try check("old deleted")
        env.api.upsertPod(TestPod(namespace: "apps", name: "new", ip: ip, role: "app-new"))
      case "addThenDelete":
        env.api.upsertPod(TestPod(namespace: "apps", name: "new", ip: ip, role: "app-new"))
        try check("new added, old still there")
        env.api.deletePod(namespace: "apps", name: "old")
      default:
        // The API still shows the old pod (running) and has not heard of the new one.
        try check("new pod unknown")
        env.api.upsertPod(TestPod(namespace: "apps", name: "new", ip: ip, role: "app-new"))
        env.api.deletePod(namespace: "apps", name: "old")
      }
      #expect(await eventually(timeout: .seconds(5)) { (try? env.curlFlow("new").list) ?? (0, "") == (200, "app-new") })
      #expect(try env.callerIdentity("new") == "arn:aws:sts::123456789012:assumed-role/app-new/kiam-kiam")
    }
  }

  @Test func crossAccountRoleThroughTheServerRole() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      try env.addCAPAControllerPod()
      #expect(try env.callerIdentity("capa") == "arn:aws:sts::999999999999:assumed-role/cluster-api/kiam-kiam")
      let stats = try await env.sts.stats()
      #expect(stats.calls("arn:aws:iam::123456789012:role/kiam_server") >= 1)
      #expect(stats.calls("arn:aws:iam::999999999999:role/cluster-api") == 1)
    }
  }

  @Test func podsCreatedAndQueriedAtOnceAreServedWithinOneSecond() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      var failures: [String] = []
      var slowest = 0.0
      for i in 0..<50 {
        let name = "s\(i)"
        let ip = try env.lab.addPod(name)
        // The pod object gets its IP and the pod's first request follows immediately.
        env.api.upsertPod(TestPod(namespace: "apps", name: name, ip: ip, role: "app-start-\(i % 5)"))
        let output = try env.lab.run(
          inPod: name,
          "curl -s --max-time 1 -w '\\n%{http_code} %{time_total}' http://169.254.169.254/latest/meta-data/iam/security-credentials/app-start-\(i % 5)"
        ).output
        let last = output.split(separator: "\n").last.map(String.init) ?? ""
        let parts = last.split(separator: " ")
        let seconds = Double(parts.last ?? "") ?? 9
        slowest = max(slowest, seconds)
        if parts.first != "200" || seconds >= 1 { failures.append("\(name): \(last)") }
        env.lab.removePod(name)
        env.api.deletePod(namespace: "apps", name: name)
      }
      #expect(failures.isEmpty, "\(failures)")
      print("pod start: 50/50, slowest first answer \(slowest) s")
      // And an unmodified SDK in a brand new pod.
      let ip = try env.lab.addPod("sdk")
      env.api.upsertPod(TestPod(namespace: "apps", name: "sdk", ip: ip, role: "app-sdk"))
      #expect(try env.boto3("sdk")["method"] as? String == "iam-role")
    }
  }

  @Test func serverRestartAndAgentRestartKeepPodsSafe() async throws {
    let env = try await setUp()
    try await withCleanup({ await env.tearDown() }) {
      let ip = try env.lab.addPod("steady")
      env.api.upsertPod(TestPod(namespace: "apps", name: "steady", ip: ip, role: "app-steady"))
      #expect(try env.curlFlow("steady").credentials.0 == 200)
      // Requests every 100 ms while the server is killed and restarted.
      let loop =
        "for i in $(seq 1 60); do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 1 http://169.254.169.254/latest/meta-data/iam/security-credentials/app-steady; sleep 0.1; done"
      async let statuses = Task.detached { try env.lab.run(inPod: "steady", loop).output }.value
      try await Task.sleep(for: .seconds(1))
      env.server?.signal(SIGKILL)
      _ = await env.server?.wait()
      try await Task.sleep(for: .seconds(2))
      try await env.startServer()
      let codes = try await statuses.split(separator: "\n")
      #expect(codes.count == 60)
      #expect(codes.allSatisfy { $0 == "200" }, "\(codes)")

      // The agent restarts with --no-iptables-remove: pods are never sent to the node's own
      // metadata service (whose credentials are the node role: test-key/default-role).
      env.agent?.signal(SIGTERM)
      _ = await env.agent?.wait()
      try await env.startAgent(["--no-iptables-remove"])
      let probe =
        "for i in $(seq 1 30); do curl -s --max-time 1 http://169.254.169.254/latest/meta-data/iam/security-credentials/; echo; sleep 0.05; done"
      async let during = Task.detached { try env.lab.run(inPod: "steady", probe).output }.value
      try await Task.sleep(for: .milliseconds(300))
      env.agent?.signal(SIGTERM)
      _ = await env.agent?.wait()
      #expect(
        try env.lab.run(onNode: "iptables -t nat -S PREROUTING").output.contains(
          "--to-destination \(env.lab.nodeIP):\(env.agentPort)"))
      try await Task.sleep(for: .milliseconds(500))
      try await env.startAgent(["--no-iptables-remove"])
      let seen = try await during
      #expect(!seen.contains("default-role"), "a pod reached the node's own metadata service: \(seen)")
      #expect(seen.contains("app-steady"))
      // For contrast: the node's own metadata service is there, only the rule keeps pods away.
      #expect(
        try env.lab.run(onNode: "curl -s http://169.254.169.254/latest/meta-data/iam/security-credentials/").output
          == "default-role")

      // An agent with another connection rate replaces the rate rule the last one left (one rule
      // of each kind, never two; hashlimit rules of one name would share the first one's table).
      env.agent?.signal(SIGTERM)
      _ = await env.agent?.wait()
      try await env.startAgent(["--max-new-connections-per-ip=50"])
      func rateRules() throws -> [Substring] {
        try env.lab.run(onNode: "iptables -t filter -S INPUT").output.split(separator: "\n")
          .filter { $0.contains("kiam agent: new connections per pod") }
      }
      #expect(await eventually { (try? rateRules())?.first?.contains("50/sec") == true })
      let rules = try env.lab.run(onNode: "iptables -t filter -S INPUT; iptables -t nat -S PREROUTING").output
      let rate = try rateRules()
      #expect(
        rate.count == 1 && rate.first?.contains("--hashlimit-above 50/sec --hashlimit-burst 100") == true, "\(rules)")
      #expect(
        rules.split(separator: "\n").filter { $0.contains("kiam agent: EC2 metadata to the agent") }.count == 1,
        "\(rules)")
      #expect(env.agent?.standardError.contains("removed a stale kiam agent rule") == true)
      #expect(
        try env.lab.run(
          inPod: "steady", "curl -s --max-time 2 http://169.254.169.254/latest/meta-data/iam/security-credentials/"
        ).output == "app-steady")
    }
  }
}
