import Foundation
import KiamTestSupport
import Testing

/// `kiam server --pod-manifests` as a real process, called by a Python grpcio client generated
/// from our proto (what Go kiam agents' wire format looks like to a third-party stack).
@Suite(
  .serialized, .enabled(if: PythonGRPCClient.isAvailable, "needs python3 with grpcio: scripts/install-test-deps.sh"))
struct StaticModeProcessTests {
  static let manifests = """
    apiVersion: v1
    kind: Namespace
    metadata:
      name: apps
      annotations:
        iam.amazonaws.com/permitted: "arn:aws:iam::123456789012:role/app-.*"
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: web
      namespace: apps
      uid: 11111111-2222-3333-4444-555555555555
      annotations:
        iam.amazonaws.com/role: app-web
    spec:
      nodeName: node-1
      containers: [{name: app, image: app:1}]
    status:
      phase: Running
      podIP: 10.0.0.1
      podIPs: [{ip: 10.0.0.1}]
    """

  func runPython(_ arguments: [String]) throws -> [[String: Any]] { try PythonGRPCClient.run(arguments) }

  @Test func pythonGRPCClientTalksToTheServerOverMutualTLS() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try dir.write("manifests/pods.yaml", Self.manifests)
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--pod-wait-timeout=200ms", "--sts-endpoint=http://127.0.0.1:1",
      ]
        + pki.server.arguments)
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    let results = try runPython([
      "127.0.0.1:\(port)", pki.agent.ca, pki.agent.certificate, pki.agent.key, "kiam-server",
      "health", "role:10.0.0.1", "role:10.9.9.9", "creds:10.0.0.1:app-other", "creds:10.9.9.9:app-web",
    ])
    #expect(results.count == 5)
    guard results.count == 5 else { return }
    #expect(results[0]["ok"] as? Bool == true && results[0]["message"] as? String == "ok")
    #expect(results[1]["name"] as? String == "app-web")
    #expect(results[2]["code"] as? String == "UNKNOWN" && results[2]["details"] as? String == "pod not found")
    #expect(results[3]["code"] as? String == "UNKNOWN" && results[3]["details"] as? String == "forbidden by policy")
    #expect(results[4]["code"] as? String == "UNKNOWN" && results[4]["details"] as? String == "no pod found")
    // A client with a certificate from another CA is refused by the server.
    let otherCA = try TestCA(name: "other")
    let stranger = try TestTLSFiles.write(
      try otherCA.issue(commonName: "x", usages: [.clientAuth]), ca: pki.ca, name: "stranger", in: dir.path)
    let refused = try runPython([
      "127.0.0.1:\(port)", stranger.ca, stranger.certificate, stranger.key, "kiam-server", "health",
    ])
    #expect(refused.first?["ok"] as? Bool == false)
    #expect(refused.first?["code"] as? String == "UNAVAILABLE")
  }

  /// A Go kiam agent's calls (its channel options, no metadata, retries inside its handlers' 5 s
  /// deadline) get kiam's answers: found at once, forbidden at once and not retried, an unknown
  /// pod retried until the deadline and then `pod not found`.
  @Test func goKiamAgentCallsGetKiamsAnswers() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    _ = try dir.write("manifests/pods.yaml", Self.manifests)
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--pod-wait-timeout=300ms", "--sts-endpoint=http://127.0.0.1:1",
      ]
        + pki.server.arguments)
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    #expect(
      await eventually { (try? PythonGRPCClient.call(port: port, pki: pki, ["health"]).first?["ok"] as? Bool) == true })
    let results = try PythonGRPCClient.call(
      port: port, pki: pki, goAgent: true, ["health", "role:10.0.0.1", "creds:10.0.0.1:app-other", "role:10.9.9.9"])
    try #require(results.count == 4)
    #expect(results[0]["message"] as? String == "ok" && results[0]["attempts"] as? Int == 1)
    #expect(results[1]["name"] as? String == "app-web" && results[1]["attempts"] as? Int == 1)
    #expect(results[2]["details"] as? String == "forbidden by policy" && results[2]["attempts"] as? Int == 1)
    // Each attempt waits up to --pod-wait-timeout for the watch, then says `pod not found`, until
    // the handler's 5 s run out (the last attempt may end on the deadline itself, as in Go kiam).
    let answers = results[3]["answers"] as? [String] ?? []
    #expect(answers.first == "UNKNOWN: pod not found", "\(results[3])")
    #expect(
      Set(answers).isSubset(of: ["UNKNOWN: pod not found", "DEADLINE_EXCEEDED: Deadline Exceeded"]), "\(answers)")
    let attempts = results[3]["attempts"] as? Int ?? 0
    let elapsed = results[3]["elapsed_ms"] as? Int ?? 0
    // Bounds loose enough for a busy machine: retried for most of the 5 s, never past them by much.
    #expect(attempts >= 3 && attempts <= 17, "\(attempts) attempts")
    #expect(elapsed >= 3500 && elapsed <= 7000, "\(elapsed) ms")
  }

  @Test func manifestsAreReReadAndBrokenFilesKeepThePreviousContent() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try dir.write("manifests/pods.yaml", Self.manifests)
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--pod-wait-timeout=100ms", "--sts-endpoint=http://127.0.0.1:1",
      ]
        + pki.server.arguments)
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    let call = { (ip: String) throws -> String? in
      try self.runPython([
        "127.0.0.1:\(port)", pki.agent.ca, pki.agent.certificate, pki.agent.key, "kiam-server", "role:\(ip)",
      ])
      .first?["name"] as? String
    }
    #expect(try call("10.0.0.1") == "app-web")
    // A new file with another pod (and a List document).
    try dir.write(
      "manifests/more.json",
      #"{"kind":"List","items":[{"kind":"Pod","metadata":{"name":"api","namespace":"apps","annotations":{"iam.amazonaws.com/role":"app-api"}},"status":{"phase":"Running","podIP":"10.0.0.2"}}]}"#
    )
    #expect(await eventually { (try? call("10.0.0.2")) == "app-api" })
    // A pod IP that is not an IP: the pod is kept without it, and the log says so.
    try dir.write(
      "manifests/bad-ip.json",
      #"{"kind":"Pod","metadata":{"name":"typo","namespace":"apps","annotations":{"iam.amazonaws.com/role":"app-typo"}},"status":{"phase":"Running","podIP":"10.0.0.300"}}"#
    )
    #expect(await eventually { server.standardError.contains("pod manifest has an invalid pod IP") })
    #expect(
      server.standardError.contains("apps/typo") && server.standardError.contains("10.0.0.300"),
      "\(server.standardError)")
    #expect(try call("10.0.0.1") == "app-web")
    // A typo keeps the file's previous content rather than dropping its pods.
    try dir.write("manifests/pods.yaml", "this: is: not: yaml: [")
    try await Task.sleep(for: .milliseconds(1500))
    #expect(try call("10.0.0.1") == "app-web")
    #expect(server.standardError.contains("cannot read pod manifest"))
    // Removing the file removes its pods.
    try FileManager.default.removeItem(atPath: "\(dir.path)/manifests/more.json")
    #expect(await eventually { (try? call("10.0.0.2")) == nil })
  }

  @Test func sigtermLetsAnInFlightRPCFinish() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try dir.write("manifests/pods.yaml", Self.manifests)
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--pod-wait-timeout=2s", "--sts-endpoint=http://127.0.0.1:1",
      ]
        + pki.server.arguments)
    try await FreePort.waitUntilListening(port)
    #expect(
      await eventually {
        ((try? self.runPython([
          "127.0.0.1:\(port)", pki.agent.ca, pki.agent.certificate, pki.agent.key, "kiam-server", "health",
        ]))?
        .first?["message"] as? String) == "ok"
      })
    // An RPC for an unknown IP waits 2 s for the watch; SIGTERM arrives meanwhile.
    let agent = pki.agent
    async let inFlight: String? = Task.detached {
      try self.runPython(["127.0.0.1:\(port)", agent.ca, agent.certificate, agent.key, "kiam-server", "role:10.7.7.7"])
        .first?["details"] as? String
    }.value
    try await Task.sleep(for: .milliseconds(700))
    server.signal(SIGTERM)
    let details = try await inFlight
    #expect(details == "pod not found")
    #expect(await server.wait(timeout: .seconds(10)) == 0)
  }
}
