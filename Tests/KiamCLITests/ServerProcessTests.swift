import Foundation
import KiamTestSupport
import Testing

/// `kiam server` and `kiam health` as real processes on loopback.
@Suite(.serialized) struct ServerProcessTests {
  struct Running {
    let process: KiamProcess
    let port: Int
    let metricsPort: Int
  }

  func startServer(_ pki: TestPKIFixture, manifests: String, extra: [String] = []) async throws -> Running {
    let port = try FreePort.next()
    let metricsPort = try FreePort.next()
    let process = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(port)", "--prometheus-listen-addr=127.0.0.1:\(metricsPort)",
        "--role-base-arn=arn:aws:iam::123456789012:role/", "--pod-manifests=\(manifests)",
        "--sts-endpoint=http://127.0.0.1:1",
      ] + pki.server.arguments + extra)
    try await FreePort.waitUntilListening(port)
    return Running(process: process, port: port, metricsPort: metricsPort)
  }

  func health(_ files: TestTLSFiles, port: Int, extra: [String] = []) async throws -> (
    status: Int32, stdout: String, stderr: String
  ) {
    try await KiamProcess.run(
      ["health", "--server-address=127.0.0.1:\(port)", "--gateway-timeout-creation=1s", "--timeout=3s"]
        + files.arguments + extra)
  }

  @Test func healthAgainstARealServer() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try FileManager.default.createDirectory(atPath: "\(dir.path)/manifests", withIntermediateDirectories: true)
    let server = try await startServer(pki, manifests: "\(dir.path)/manifests")

    // Healthy: the server's own certificate (both EKUs) as the manifests' probe uses it.
    let ok = try await health(pki.server, port: server.port)
    #expect(ok.status == 0, "\(ok.stderr)")
    #expect(ok.stderr.contains("healthy: ok"))
    let okJSON = try await health(pki.agent, port: server.port, extra: ["--json-log"])
    #expect(okJSON.status == 0)
    let line = try #require(okJSON.stderr.split(separator: "\n").last)
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    #expect(object?["msg"] as? String == "healthy: ok")

    // Wrong CA: the probe does not trust the server, exit 1 with the error.
    let otherCA = try TestCA(name: "other-ca")
    let stranger = try TestTLSFiles.write(
      try otherCA.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: otherCA, name: "stranger", in: dir.path)
    let wrong = try await health(stranger, port: server.port)
    #expect(wrong.status == 1)
    #expect(wrong.stderr.contains("error creating server gateway"), "\(wrong.stderr)")

    // Metrics of the running server parse and count the probes.
    let page = try await HTTPGet.text("http://127.0.0.1:\(server.metricsPort)/metrics")
    let metrics = try PrometheusText(page)
    #expect(
      (metrics.value(
        "grpc_server_handled_total",
        ["grpc_type": "unary", "grpc_service": "kiam.KiamService", "grpc_method": "GetHealth", "grpc_code": "OK"]) ?? 0)
        >= 2)
    #expect((metrics.value("process_resident_memory_bytes") ?? 0) > 0)
    #expect(metrics.value("grpc_server_tls_certificate_update_error") == 0)

    server.process.signal(SIGTERM)
    #expect(await server.process.wait(timeout: .seconds(10)) == 0)

    // Server down: exit 1 quickly with the dial error.
    let started = ContinuousClock.now
    let down = try await health(pki.server, port: server.port)
    #expect(down.status == 1)
    #expect(down.stderr.contains("error creating server gateway"), "\(down.stderr)")
    #expect(ContinuousClock.now - started < .seconds(10))
  }

  @Test func sigintAlsoStopsCleanly() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try FileManager.default.createDirectory(atPath: "\(dir.path)/manifests", withIntermediateDirectories: true)
    let server = try await startServer(pki, manifests: "\(dir.path)/manifests")
    server.process.signal(SIGINT)
    #expect(await server.process.wait(timeout: .seconds(10)) == 0)
    #expect(!FreePort.canConnect(host: "127.0.0.1", port: server.port))
  }

  @Test func portInUseIsOneFatalLine() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try FileManager.default.createDirectory(atPath: "\(dir.path)/manifests", withIntermediateDirectories: true)
    let first = try await startServer(pki, manifests: "\(dir.path)/manifests")
    defer { first.process.signal(SIGKILL) }
    let second = try await KiamProcess.run(
      [
        "server", "--bind=127.0.0.1:\(first.port)", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(dir.path)/manifests", "--sts-endpoint=http://127.0.0.1:1",
      ] + pki.server.arguments,
      timeout: .seconds(20))
    #expect(second.status == 1)
    #expect(second.stderr.contains("level=fatal"), "\(second.stderr)")
  }
}
