import Foundation
import KiamTestSupport
import Testing

/// The seed's server manifest for RHEL and Amazon Linux hosts mounts the host's
/// `/etc/pki/ca-trust/extracted/pem/` on `/etc/ssl/certs`. A real server process sees exactly
/// that (a private mount namespace), and calls STS over TLS (moto with a test CA).
@Suite(.serialized) struct TrustRootsProcessTests {
  static let unavailableReason: String? = {
    guard getuid() == 0 else { return "not root (needs a private mount namespace)" }
    if (try? Shell.run("unshare -m true"))?.status != 0 { return "unshare -m does not work here" }
    if !STSLab.isAvailable { return "python3 with moto missing" }
    if !PythonGRPCClient.isAvailable { return "python3 grpcio missing" }
    return nil
  }()

  @Test(.enabled(if: unavailableReason == nil, "\(unavailableReason ?? "")"))
  func stsOverTLSTrustsTheRHELBundleMountedOnEtcSslCerts() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    // STS over TLS with a CA that exists only in the mounted directory, as tls-ca-bundle.pem.
    let stsCA = try TestCA(name: "sts test ca")
    let leaf = try stsCA.issue(commonName: "sts", ipAddresses: ["127.0.0.1"], usages: [.serverAuth])
    let certificate = try dir.write("sts.pem", leaf.certificatePEM)
    let key = try dir.write("sts-key.pem", leaf.keyPEM)
    let lab = try await STSLab(tls: (certificate, key))
    defer { lab.stop() }
    let extracted = "\(dir.path)/ca-trust/extracted/pem"
    try FileManager.default.createDirectory(atPath: extracted + "/directory-hash", withIntermediateDirectories: true)
    _ = try dir.write("ca-trust/extracted/pem/tls-ca-bundle.pem", "# sts test ca\n" + stsCA.pem)
    _ = try dir.write("ca-trust/extracted/pem/email-ca-bundle.pem", "")
    try dir.writeManifests(
      [TestNamespace(name: "apps", permitted: ".*")],
      [TestPod(namespace: "apps", name: "web", ip: "10.0.0.1", role: "app-web")])
    let port = try FreePort.next()
    let arguments =
      [
        "server", "--bind=127.0.0.1:\(port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--sts-endpoint=\(lab.endpoint)",
      ] + pki.server.arguments
    // The host's RHEL directory on /etc/ssl/certs, and no AWS_CA_BUNDLE (this machine sets one).
    let server = try KiamProcess(
      [
        "-m", "sh", "-c",
        "mount --bind \(extracted) /etc/ssl/certs && exec env -u AWS_CA_BUNDLE -u SSL_CERT_FILE -u SSL_CERT_DIR "
          + "AWS_ACCESS_KEY_ID=AKIATRUST AWS_SECRET_ACCESS_KEY=unchecked \(KiamProcess.binaryPath) "
          + arguments.map(Shell.quote).joined(separator: " "),
      ],
      executable: "/usr/bin/unshare")
    defer { server.signal(SIGKILL) }
    try await FreePort.waitUntilListening(port)
    var answer: [String: Any] = [:]
    let served = await eventually(timeout: .seconds(15)) {
      answer = (try? PythonGRPCClient.call(port: port, pki: pki, ["creds:10.0.0.1:app-web"]).first) ?? [:]
      return answer["ok"] as? Bool == true
    }
    #expect(served, "\(answer) \(server.standardError)")
    #expect(answer["code"] as? String == "Success")
    #expect((answer["access_key_id"] as? String)?.hasPrefix("ASIA") == true)
    // Where the roots came from, said once at start.
    #expect(server.standardError.contains("/etc/ssl/certs (2 files, 1 new certificates)"), "\(server.standardError)")
  }
}
