import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import KiamShared
import KiamTestSupport
import Logging
import Testing

/// Mutual TLS between kiam's own gRPC transports, with certificates generated in the test.
@Suite struct MutualTLSTests {
  let logger = Logger(label: "test")

  /// Runs a health-only kiam gRPC server on 127.0.0.1 with `files`, then `body(port, store)`.
  func withServer<T: Sendable>(
    files: TestTLSFiles, metrics: KiamMetrics? = nil,
    _ body: @Sendable (Int, TLSMaterialStore) async throws -> T
  ) async throws -> T {
    let store = try await TLSMaterialStore(
      files: TLSFiles(certificatePath: files.certificate, keyPath: files.key, caPath: files.ca),
      role: .server, metrics: metrics, logger: logger)
    let transport = try KiamTransports.server(
      bind: HostPort(host: "127.0.0.1", port: 0), store: store, settings: .defaults)
    return try await withGRPCServer(transport: transport, services: [HealthOnlyService()]) { server in
      guard let address = try await transport.listeningAddress.ipv4 else {
        throw TestSupportError("no IPv4 address")
      }
      return try await body(address.port, store)
    }
  }

  /// Calls GetHealth as a kiam client with `files`, dialling `host:port`.
  func callHealth(files: TestTLSFiles, host: String = "localhost", port: Int) async throws -> String {
    let store = try await TLSMaterialStore(
      files: TLSFiles(certificatePath: files.certificate, keyPath: files.key, caPath: files.ca),
      role: .client, metrics: nil, logger: logger)
    let transport = try KiamTransports.client(
      server: HostPort(host: host, port: port), store: store, settings: .defaults)
    return try await withGRPCClient(transport: transport) { client in
      var options = CallOptions.defaults
      options.timeout = .seconds(3)
      options.waitForReady = false
      return try await Kiam_KiamService.Client(wrapping: client).getHealth(Kiam_GetHealthRequest(), options: options)
        .message
    }
  }

  @Test func clientFromTheCAIsAccepted() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let message = try await withServer(files: pki.server) { port, _ in
      try await callHealth(files: pki.agent, port: port)
    }
    #expect(message == "ok")
    // The server certificate names 127.0.0.1 too.
    let viaIP = try await withServer(files: pki.server) { port, _ in
      try await callHealth(files: pki.agent, host: "127.0.0.1", port: port)
    }
    #expect(viaIP == "ok")
  }

  @Test func clientWithoutCertificateIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: pki.server) { port, _ in
        let transport = try HTTP2ClientTransport.Posix(
          target: .ipv4(host: "127.0.0.1", port: port),
          transportSecurity: .tls { $0.trustRoots = .certificates([.file(path: pki.server.ca, format: .pem)]) },
          config: .defaults { $0.http2.authority = "localhost" })
        return try await withGRPCClient(transport: transport) { client in
          var options = CallOptions.defaults
          options.timeout = .seconds(3)
          options.waitForReady = false
          return try await Kiam_KiamService.Client(wrapping: client).getHealth(
            Kiam_GetHealthRequest(), options: options
          )
          .message
        }
      }
    }
  }

  @Test func clientFromAnotherCAIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let evil = try TestCA(name: "evil-ca")
    // The intruder trusts our CA (so it would accept our server) but its cert is from another CA.
    let intruder = try evil.issue(commonName: "kiam-agent", usages: [.clientAuth])
    let files = try TestTLSFiles.write(intruder, ca: pki.ca, name: "intruder", in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: pki.server) { port, _ in try await callHealth(files: files, port: port) }
    }
  }

  @Test func clientCertificateWithoutClientAuthIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let serverOnly = try pki.ca.issue(commonName: "not-a-client", usages: [.serverAuth])
    let files = try TestTLSFiles.write(serverOnly, ca: pki.ca, name: "server-only", in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: pki.server) { port, _ in try await callHealth(files: files, port: port) }
    }
  }

  @Test func serverCertificateWithoutServerAuthIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let clientOnly = try pki.ca.issue(
      commonName: "kiam-server", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], usages: [.clientAuth])
    let files = try TestTLSFiles.write(clientOnly, ca: pki.ca, name: "client-only-server", in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: files) { port, _ in try await callHealth(files: pki.agent, port: port) }
    }
  }

  @Test func expiredClientCertificateIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let expired = try pki.ca.issue(commonName: "kiam-agent", usages: [.clientAuth], validFrom: -7200, validFor: 3600)
    let files = try TestTLSFiles.write(expired, ca: pki.ca, name: "expired", in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: pki.server) { port, _ in try await callHealth(files: files, port: port) }
    }
  }

  @Test func expiredServerCertificateIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let expired = try pki.ca.issue(
      commonName: "kiam-server", dnsNames: ["localhost"], validFrom: -7200, validFor: 3600)
    let files = try TestTLSFiles.write(expired, ca: pki.ca, name: "expired-server", in: dir.path)
    await #expect(throws: RPCError.self) {
      try await withServer(files: files) { port, _ in try await callHealth(files: pki.agent, port: port) }
    }
  }

  @Test func wrongServerNameIsRejected() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let other = try pki.ca.issue(commonName: "other", dnsNames: ["other-service"], ipAddresses: ["10.1.1.1"])
    let files = try TestTLSFiles.write(other, ca: pki.ca, name: "other", in: dir.path)
    // Dialling "localhost" and "127.0.0.1": the certificate names neither.
    await #expect(throws: RPCError.self) {
      try await withServer(files: files) { port, _ in try await callHealth(files: pki.agent, port: port) }
    }
    await #expect(throws: RPCError.self) {
      try await withServer(files: files) { port, _ in
        try await callHealth(files: pki.agent, host: "127.0.0.1", port: port)
      }
    }
  }

  @Test func serverDoesNotTrustSystemRoots() async throws {
    // A client certificate chaining to a CA that is only in the system store would be rejected
    // because trust comes from --ca alone; here the "system" CA is simply any CA that is not ours.
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let store = try await TLSMaterialStore(
      files: TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.server.key, caPath: pki.server.ca),
      role: .server, metrics: nil, logger: logger)
    #expect(store.material.caCertificates.count == 1)
    #expect(store.material.caCertificates[0] == pki.ca.certificate)
  }

  /// Kubernetes Secret volume layout: files are symlinks into `..data`, itself a symlink to a
  /// timestamped directory that the kubelet swaps atomically.
  func writeSecretVolume(_ dir: String, version: String, leaf: TestLeaf, ca: TestCA) throws {
    let fm = FileManager.default
    let versioned = "\(dir)/..\(version)"
    try fm.createDirectory(atPath: versioned, withIntermediateDirectories: true)
    try leaf.certificatePEM.write(toFile: "\(versioned)/tls.crt", atomically: true, encoding: .utf8)
    try leaf.keyPEM.write(toFile: "\(versioned)/tls.key", atomically: true, encoding: .utf8)
    try ca.pem.write(toFile: "\(versioned)/ca.crt", atomically: true, encoding: .utf8)
    let tmpLink = "\(dir)/..data_tmp"
    try? fm.removeItem(atPath: tmpLink)
    try fm.createSymbolicLink(atPath: tmpLink, withDestinationPath: "..\(version)")
    guard rename(tmpLink, "\(dir)/..data") == 0 else { throw TestSupportError("rename failed") }
    for name in ["tls.crt", "tls.key", "ca.crt"] where !fm.fileExists(atPath: "\(dir)/\(name)") {
      try fm.createSymbolicLink(atPath: "\(dir)/\(name)", withDestinationPath: "..data/\(name)")
    }
  }

  @Test func rotatedCertificateIsPickedUpAndBrokenFilesKeepTheOld() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let volume = "\(dir.path)/secret"
    try FileManager.default.createDirectory(atPath: volume, withIntermediateDirectories: true)
    let first = try pki.ca.issue(commonName: "kiam-server-1", dnsNames: ["localhost"])
    try writeSecretVolume(volume, version: "2026_01", leaf: first, ca: pki.ca)
    let metrics = KiamMetrics()
    let serverFiles = TestTLSFiles(certificate: "\(volume)/tls.crt", key: "\(volume)/tls.key", ca: "\(volume)/ca.crt")

    try await withServer(files: serverFiles, metrics: metrics) { port, store in
      #expect(try await callHealth(files: pki.agent, port: port) == "ok")
      #expect(store.material.leaf.subject.description.contains("kiam-server-1"))

      // Rotate to a certificate from a brand-new CA (and trust it): only clients trusting the new
      // CA can now connect, which proves new handshakes use the new material.
      let newCA = try TestCA(name: "rotated-ca")
      let second = try newCA.issue(commonName: "kiam-server-2", dnsNames: ["localhost"])
      try writeSecretVolume(volume, version: "2026_02", leaf: second, ca: newCA)
      guard case .reloaded = await store.reload() else {
        Issue.record("expected a reload")
        return
      }
      #expect(store.material.leaf.subject.description.contains("kiam-server-2"))
      let newAgent = try TestTLSFiles.write(
        try newCA.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: newCA, name: "agent2", in: dir.path)
      #expect(try await callHealth(files: newAgent, port: port) == "ok")
      await #expect(throws: RPCError.self) { try await callHealth(files: pki.agent, port: port) }
      #expect(
        try PrometheusText(metrics.registry.emitToString()).value("grpc_server_tls_certificate_update_error") == 0)

      // A broken new version keeps the previous material and raises the error gauge.
      let versioned = "\(volume)/..2026_03"
      try FileManager.default.createDirectory(atPath: versioned, withIntermediateDirectories: true)
      try "garbage".write(toFile: "\(versioned)/tls.crt", atomically: true, encoding: .utf8)
      try second.keyPEM.write(toFile: "\(versioned)/tls.key", atomically: true, encoding: .utf8)
      try newCA.pem.write(toFile: "\(versioned)/ca.crt", atomically: true, encoding: .utf8)
      try FileManager.default.createSymbolicLink(atPath: "\(volume)/..data_tmp", withDestinationPath: "..2026_03")
      #expect(rename("\(volume)/..data_tmp", "\(volume)/..data") == 0)
      guard case .failed(let error) = await store.reload() else {
        Issue.record("expected a failed reload")
        return
      }
      #expect(error.description.contains("tls.crt"))
      #expect(store.material.leaf.subject.description.contains("kiam-server-2"))
      #expect(
        try PrometheusText(metrics.registry.emitToString()).value("grpc_server_tls_certificate_update_error") == 1)
      #expect(try await callHealth(files: newAgent, port: port) == "ok")
    }
  }

  @Test func reloadServicePicksUpChangesOnItsOwn() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let store = try await TLSMaterialStore(
      files: TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca),
      role: .client, metrics: nil, logger: logger)
    let replacement = try pki.ca.issue(commonName: "kiam-agent-rotated", usages: [.clientAuth])
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await TLSReloadService(store: store, interval: .milliseconds(50)).run() }
      try replacement.keyPEM.write(toFile: pki.agent.key, atomically: true, encoding: .utf8)
      try replacement.certificatePEM.write(toFile: pki.agent.certificate, atomically: true, encoding: .utf8)
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(5)
      while clock.now < deadline, !store.material.leaf.subject.description.contains("rotated") {
        try await Task.sleep(for: .milliseconds(20))
      }
      group.cancelAll()
    }
    #expect(store.material.leaf.subject.description.contains("kiam-agent-rotated"))
  }

  @Test func keyNotMatchingCertificateIsRefused() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    #expect(throws: KiamError.self) {
      _ = try TLSMaterial.load(
        TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.agent.key, caPath: pki.server.ca))
    }
    do {
      _ = try TLSMaterial.load(
        TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.agent.key, caPath: pki.server.ca))
    } catch let error as KiamError {
      #expect(error.description.contains("does not match"))
    }
  }

  /// A file cut short (a second certificate without its END line) or with something appended is
  /// an error naming the file, not a chain of the blocks that happen to parse.
  @Test(arguments: [
    ("cert", "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n"), ("cert", "garbage\n"),
    ("key", "\u{0}\u{1}binary"), ("ca", "-----BEGIN CERTIFICATE-----\n"),
  ])
  func trailingDataAfterThePEMBlocksIsAnError(_ file: String, _ appended: String) throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let paths = ["cert": pki.server.certificate, "key": pki.server.key, "ca": pki.server.ca]
    let handle = try #require(FileHandle(forWritingAtPath: paths[file]!))
    handle.seekToEndOfFile()
    handle.write(Data(appended.utf8))
    handle.closeFile()
    let error = #expect(throws: KiamError.self) {
      _ = try TLSMaterial.load(
        TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.server.key, caPath: pki.server.ca))
    }
    #expect(
      error?.description.contains("--\(file) \(paths[file]!): unexpected data after the last PEM block") == true,
      "\(String(describing: error))")
  }

  /// White space after the last block (an editor's newline, CRLF) is fine.
  @Test func whiteSpaceAfterThePEMBlocksIsFine() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    for path in [pki.server.certificate, pki.server.key, pki.server.ca] {
      let handle = try #require(FileHandle(forWritingAtPath: path))
      handle.seekToEndOfFile()
      handle.write(Data("\r\n\n  \t\n".utf8))
      handle.closeFile()
    }
    _ = try TLSMaterial.load(
      TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.server.key, caPath: pki.server.ca))
  }
}
