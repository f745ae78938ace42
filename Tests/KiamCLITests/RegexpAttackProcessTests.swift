import Foundation
import KiamTestSupport
import Testing

/// A namespace expression that backtracked for seconds per pod, and oversized role annotations,
/// against a real server process asked by a grpcio client (as agents ask).
@Suite(.serialized) struct RegexpAttackProcessTests {
  static let unavailableReason: String? =
    !STSLab.isAvailable ? "python3 with moto missing" : !PythonGRPCClient.isAvailable ? "python3 grpcio missing" : nil

  @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
  func aBacktrackingNamespaceExpressionAndHugeRolesAreCheap() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let lab = try await STSLab()
    defer { lab.stop() }
    let huge = String(repeating: "a-", count: 1500)
    try dir.writeManifests(
      [
        TestNamespace(name: "regex", permitted: "arn:aws:iam::123456789012:role/([a-z0-9]+-?)*"),
        TestNamespace(name: "dashes", permitted: ".*-.*-.*-app"),
        TestNamespace(name: "apps", permitted: ".*"),
      ],
      [
        TestPod(namespace: "regex", name: "attacker", ip: "10.0.3.1", role: "aaaaaaaaaaaaaaaaaa!"),
        TestPod(namespace: "dashes", name: "long", ip: "10.0.3.2", role: String(repeating: "a-", count: 400)),
        TestPod(namespace: "apps", name: "huge", ip: "10.0.3.3", role: huge),
        TestPod(namespace: "apps", name: "web", ip: "10.0.3.4", role: "app-web"),
      ])
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests",
        "--sts-endpoint=\(lab.endpoint)",
      ] + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIAREGEX", "AWS_SECRET_ACCESS_KEY": "unchecked", "HOME": dir.path])
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    #expect(
      await eventually { (try? PythonGRPCClient.call(port: port, pki: pki, ["health"]).first?["ok"] as? Bool) == true })
    // Warm the client's connection, then time the attacks (each call is one RPC).
    _ = try PythonGRPCClient.call(port: port, pki: pki, ["creds:10.0.3.4:app-web"])
    let clock = ContinuousClock()
    let started = clock.now
    let answers = try PythonGRPCClient.call(
      port: port, pki: pki,
      [
        "creds:10.0.3.1:aaaaaaaaaaaaaaaaaa!", "creds:10.0.3.2:\(String(repeating: "a-", count: 400))",
        "creds:10.0.3.3:\(huge)",
        "creds:10.0.3.4:app-web",
      ])
    let elapsed = clock.now - started
    try #require(answers.count == 4)
    #expect(answers[0]["details"] as? String == "forbidden by policy", "\(answers[0])")
    // Longer than IAM allows (a role name has at most 64 characters, an ARN 2048): refused with
    // the reason, before any expression or STS sees it.
    #expect((answers[1]["details"] as? String)?.contains("longer than IAM allows") == true, "\(answers[1])")
    #expect((answers[2]["details"] as? String)?.contains("longer than IAM allows") == true, "\(answers[2])")
    #expect(answers[3]["code"] as? String == "Success", "\(answers[3])")
    // Each attack cost the server seconds of one core before.
    for answer in answers {
      #expect(
        (answer["elapsed_ms"] as? Double ?? 1e9) < 100, "\(answer["call"] ?? "") took \(answer["elapsed_ms"] ?? "?") ms"
      )
    }
    #expect(elapsed < .seconds(10), "\(elapsed)")
    let stats = try await lab.stats()
    #expect(
      stats.assume_role.keys.allSatisfy { !$0.contains("a-a-a-") && !$0.contains("!") }, "\(stats.assume_role.keys)")
  }
}
