import Foundation
import KiamTestSupport
import Testing

/// Our agent against a server that answers exactly as Go kiam's does (scripts/test/go_kiam_server.py:
/// plain-error texts with status UNKNOWN, no response metadata), so "Go kiam servers work with
/// this agent" stays true while a cluster is half migrated.
@Suite(.serialized) struct GoKiamServerTests {
  static let awsError =
    "AccessDenied: User: arn:aws:sts::123456789012:assumed-role/kiam_server/kiam-server is not authorized to perform: "
    + "sts:AssumeRole on resource: arn:aws:iam::123456789012:role/app-sts\n\tstatus code: 403, request id: 5f3b0c7e-1111-2222-3333-444455556666"

  static var pods: String {
    let table: [String: [[String: Any]]] = [
      "10.0.0.1": [["role": "app-web"]],
      "10.0.0.2": [["role": ""]],
      "10.0.0.3": [["role": "app-db", "deny": true]],
      "10.0.0.4": [["role": "app-sts", "sts_error": awsError]],
      "10.0.0.9": [["role": "app-a"], ["role": "app-b"]],
      "10.0.0.10": [["role": "app-old", "phase": "Succeeded"], ["role": "app-new"]],
    ]
    let data = try! JSONSerialization.data(withJSONObject: table, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
  }

  /// One line of the Go server's call log.
  struct Call: Decodable {
    let method: String
    let ip: String?
    let role: String?
    let deadline_ms: Int?
    let metadata: [String: String]
  }

  @Test(
    .enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"),
    .enabled(if: PythonGRPCClient.isAvailable, "needs python3 grpcio (scripts/install-test-deps.sh)"))
  func agentAnswersAsGoKiamsAgentDidAgainstAGoKiamServer() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      let podsFile = try h.directory.write("go-pods.json", Self.pods)
      let log = h.directory.path + "/go-calls.jsonl"
      let server = try KiamProcess(
        [
          "python3", KiamProcess.packageRoot + "/scripts/test/go_kiam_server.py", "--port", "\(h.serverPort)", "--ca",
          h.pki.server.ca,
          "--cert", h.pki.server.certificate, "--key", h.pki.server.key, "--pods", podsFile, "--log", log,
        ],
        executable: "/usr/bin/env")
      h.server = server
      try await FreePort.waitUntilListening(h.serverPort, timeout: .seconds(30))
      try await h.startAgent()
      #expect(
        await eventually(timeout: .seconds(15)) { (try? h.get("/health?deep=1").status) == 200 },
        "\(server.standardError)")
      defer { server.signal(SIGKILL) }

      let list = "/latest/meta-data/iam/security-credentials/"
      func body(_ exchange: HTTPExchange) -> String { exchange.body.trimmingCharacters(in: .newlines) }
      // A pod with a role: its name, then Go kiam's credentials, as the document SDKs parse.
      let web = try h.get(list, ip: "10.0.0.1")
      #expect(web.status == 200 && web.body == "app-web", "\(web.status) \(web.body)")
      let credentials = try h.get(list + "app-web", ip: "10.0.0.1")
      #expect(credentials.status == 200, "\(credentials.body)")
      let document = try JSONSerialization.jsonObject(with: Data(credentials.body.utf8)) as? [String: String] ?? [:]
      #expect(document["Code"] == "Success" && document["Type"] == "AWS-HMAC")
      #expect(document["AccessKeyId"]?.hasPrefix("ASIAGOKIAM10X0X0X1") == true, "\(document)")
      #expect(document["Token"] == "go-kiam-token-for-10.0.0.1")
      #expect(
        document["Expiration"]?.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"#, options: .regularExpression) != nil)
      #expect(document["LastUpdated"] != nil)

      // Go kiam's texts come through unchanged.
      #expect(try h.get(list, ip: "10.0.0.2").status == 404)
      #expect(body(try h.get(list, ip: "10.0.0.2")) == "empty role")
      let denied = try h.get(list + "app-db", ip: "10.0.0.3")
      #expect(
        denied.status == 500 && body(denied) == "error fetching credentials: forbidden by policy", "\(denied.body)")
      let sts = try h.get(list + "app-sts", ip: "10.0.0.4")
      #expect(sts.status == 500)
      #expect(
        body(sts) == "error fetching credentials: rpc error: code = Unknown desc = " + Self.awsError, "\(sts.body)")
      let multiple = try h.get(list, ip: "10.0.0.9")
      #expect(
        multiple.status == 500 && body(multiple) == "rpc error: code = Unknown desc = multiple running pods found")
      // A finished pod does not own its IP.
      #expect(try h.get(list, ip: "10.0.0.10").body == "app-new")
      // Unknown pods: Go kiam's server answers at once; the agent asks again within its budget.
      let clock = ContinuousClock()
      let started = clock.now
      let unknown = try h.get(list, ip: "10.0.0.8")
      #expect(
        unknown.status == 500 && body(unknown) == "rpc error: code = Unknown desc = pod not found", "\(unknown.body)")
      #expect(clock.now - started < .milliseconds(1100))
      let noPod = try h.get(list + "app-x", ip: "10.0.0.8")
      #expect(noPod.status == 500 && body(noPod) == "error fetching credentials: no pod found", "\(noPod.body)")

      // What the Go server saw: kiam's calls, each with a deadline inside the SDK's budget and no
      // metadata of ours (no node token was configured).
      let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
        try JSONDecoder().decode(Call.self, from: Data($0.utf8))
      }
      #expect(calls.contains { $0.method == "GetPodRole" && $0.ip == "10.0.0.1" })
      #expect(calls.contains { $0.method == "GetPodCredentials" && $0.ip == "10.0.0.1" && $0.role == "app-web" })
      #expect(calls.contains { $0.method == "GetHealth" })
      for call in calls {
        #expect(
          (call.deadline_ms ?? Int.max) <= 1000,
          "\(call.method) without a deadline inside the budget: \(call.deadline_ms ?? -1)")
        #expect(call.metadata["authorization"] == nil)
      }
    }
  }
}
