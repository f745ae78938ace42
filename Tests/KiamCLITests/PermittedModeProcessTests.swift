import Foundation
import KiamShared
import KiamTestSupport
import Testing

/// The same namespaces and pods under kiam v4's matching (the default), v4 with
/// `--disable-strict-namespace-regexp`, and kiam v3's (`--permitted-regexp-mode=v3`): a real
/// server process, STS from moto, and a grpcio client asking as a Go kiam agent would.
@Suite(.serialized) struct PermittedModeProcessTests {
  static let unavailableReason: String? =
    !STSLab.isAvailable ? "python3 with moto missing" : !PythonGRPCClient.isAvailable ? "python3 grpcio missing" : nil

  static var manifests: String {
    var text = ""
    for (index, c) in PermittedCase.all.enumerated() {
      text += """
        ---
        apiVersion: v1
        kind: Namespace
        metadata: {name: ns-\(index), annotations: {iam.amazonaws.com/permitted: \(JSON.quote(c.expression))}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: pod-\(index), namespace: ns-\(index), uid: uid-\(index), annotations: {iam.amazonaws.com/role: \(JSON.quote(c.annotation))}}
        status: {phase: Running, podIP: 10.0.2.\(index + 1)}

        """
    }
    return text
  }

  @Test(
    .enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"),
    arguments: [[], ["--disable-strict-namespace-regexp"], ["--permitted-regexp-mode=v3"]])
  func sameNamespacesAndPodsUnderEachMode(_ flags: [String]) async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let lab = try await STSLab()
    defer { lab.stop() }
    _ = try dir.write("manifests/pods.yaml", Self.manifests)
    let port = try FreePort.next()
    let server = try KiamProcess(
      ["server", "--bind=127.0.0.1:\(port)", "--role-base-arn=\(PermittedCase.base)", "--pod-manifests=\(dir.path)/manifests",
       "--sts-endpoint=\(lab.endpoint)"] + flags + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIAMODES", "AWS_SECRET_ACCESS_KEY": "unchecked", "HOME": dir.path])
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    #expect(await eventually { (try? PythonGRPCClient.call(port: port, pki: pki, ["health"]).first?["ok"] as? Bool) == true })
    let calls = PermittedCase.all.enumerated().map { "creds:10.0.2.\($0.offset + 1):\($0.element.annotation)" }
    let answers = try PythonGRPCClient.call(port: port, pki: pki, calls)
    #expect(answers.count == PermittedCase.all.count)
    for (c, answer) in zip(PermittedCase.all, answers) {
      let expected = flags.isEmpty ? c.v4 : flags == ["--permitted-regexp-mode=v3"] ? c.v3 : c.v4Unanchored
      if expected {
        #expect(answer["ok"] as? Bool == true && answer["code"] as? String == "Success", "\(flags) \(c): \(answer)")
      } else {
        #expect(answer["details"] as? String == "forbidden by policy", "\(flags) \(c): \(answer)")
      }
    }
  }
}
