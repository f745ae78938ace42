import Foundation
import KiamTestSupport
import Testing

/// The same namespaces and pods under kiam v4's matching (the default), v4 with
/// `--disable-strict-namespace-regexp`, and kiam v3's (`--permitted-regexp-mode=v3`): a real
/// server process, STS from moto, and a grpcio client asking for every pod's credentials.
@Suite(.serialized) struct PermittedModeProcessTests {
  static let unavailableReason: String? =
    !STSLab.isAvailable ? "python3 with moto missing" : !PythonGRPCClient.isAvailable ? "python3 grpcio missing" : nil

  @Test(
    .enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"),
    arguments: [[], ["--disable-strict-namespace-regexp"], ["--permitted-regexp-mode=v3"]])
  func sameNamespacesAndPodsUnderEachMode(_ flags: [String]) async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let lab = try await STSLab()
    defer { lab.stop() }
    let cases = PermittedCase.all.enumerated()
    try dir.writeManifests(
      cases.map { TestNamespace(name: "ns-\($0.offset)", permitted: $0.element.expression) },
      cases.map {
        TestPod(
          namespace: "ns-\($0.offset)", name: "pod-\($0.offset)", ip: "10.0.2.\($0.offset + 1)",
          role: $0.element.annotation)
      })
    let port = try FreePort.next()
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=\(PermittedCase.base)",
        "--pod-manifests=\(dir.path)/manifests",
        "--sts-endpoint=\(lab.endpoint)",
      ] + flags + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIAMODES", "AWS_SECRET_ACCESS_KEY": "unchecked", "HOME": dir.path])
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    #expect(
      await eventually { (try? PythonGRPCClient.call(port: port, pki: pki, ["health"]).first?["ok"] as? Bool) == true })
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
