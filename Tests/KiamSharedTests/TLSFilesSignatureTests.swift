import Foundation
import KiamTestSupport
import Logging
import Testing

@testable import KiamShared

/// The `stat` check that lets the periodic TLS reload skip reading and hashing unchanged files.
@Suite struct TLSFilesSignatureTests {
  let logger = Logger(label: "test")

  func files(_ tls: TestTLSFiles) -> TLSFiles {
    TLSFiles(certificatePath: tls.certificate, keyPath: tls.key, caPath: tls.ca)
  }

  /// Rewrites `path` in place (same inode), as an editor or `cp` over the file would.
  func rewriteInPlace(_ path: String, with text: String) throws {
    let handle = try #require(FileHandle(forWritingAtPath: path))
    defer { try? handle.close() }
    try handle.truncate(atOffset: 0)
    try handle.write(contentsOf: Data(text.utf8))
  }

  @Test func freshlyWrittenFilesAreNotTrustedUntilTheirTimestampsAreOld() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let signature = try #require(TLSFilesSignature.read(files(pki.agent)))
    let newest = signature.entries.map { max($0.modified, $0.changed) }.max() ?? 0
    // Written just now: a rewrite within the timestamp granularity could look the same.
    #expect(TLSFilesSignature.taken(of: files(pki.agent)) == nil)
    #expect(!signature.isSettled(at: newest + TLSFilesSignature.settleTime - 1))
    #expect(signature.isSettled(at: newest + TLSFilesSignature.settleTime))
    // The same files give the same signature; a missing file gives none.
    #expect(TLSFilesSignature.read(files(pki.agent)) == signature)
    let missing = TLSFiles(
      certificatePath: pki.agent.certificate, keyPath: dir.path + "/none.pem", caPath: pki.agent.ca)
    #expect(TLSFilesSignature.read(missing) == nil)
  }

  @Test func reloadSeesEveryKindOfChangeToSettledFiles() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try await Task.sleep(for: .milliseconds(2_100))
    let store = try await TLSMaterialStore(files: files(pki.agent), role: .client, metrics: nil, logger: logger)
    #expect(TLSFilesSignature.taken(of: files(pki.agent)) != nil)
    for _ in 0..<3 {
      guard case .unchanged = await store.reload() else {
        Issue.record("settled, unchanged files must not count as a change")
        return
      }
    }
    // Three stat calls each time, no reading or hashing.
    #expect(store.reads == 0)

    // In place, same inode: the change and modification times move.
    let second = try pki.ca.issue(commonName: "kiam-agent-second", usages: [.clientAuth])
    try rewriteInPlace(pki.agent.key, with: second.keyPEM)
    try rewriteInPlace(pki.agent.certificate, with: second.certificatePEM)
    guard case .reloaded = await store.reload() else {
      Issue.record("an in-place rewrite must be seen")
      return
    }
    #expect(store.reads == 1)
    #expect(store.material.leaf.subject.description.contains("kiam-agent-second"))

    // Replaced by rename (new inode), after the files have settled again.
    try await Task.sleep(for: .milliseconds(2_100))
    guard case .unchanged = await store.reload() else {
      Issue.record("expected no change")
      return
    }
    // Read once more: the signature taken right after the rewrite was too young to be trusted.
    #expect(store.reads == 2)
    guard case .unchanged = await store.reload() else {
      Issue.record("expected no change")
      return
    }
    #expect(store.reads == 2)
    let third = try pki.ca.issue(commonName: "kiam-agent-third", usages: [.clientAuth])
    try third.keyPEM.write(toFile: pki.agent.key, atomically: true, encoding: .utf8)
    try third.certificatePEM.write(toFile: pki.agent.certificate, atomically: true, encoding: .utf8)
    guard case .reloaded = await store.reload() else {
      Issue.record("a replaced file must be seen")
      return
    }
    #expect(store.material.leaf.subject.description.contains("kiam-agent-third"))

    // A file that disappears is reported (and the material kept).
    try FileManager.default.removeItem(atPath: pki.agent.ca)
    guard case .failed(let error) = await store.reload() else {
      Issue.record("a missing file must fail the reload")
      return
    }
    #expect(error.description.contains(pki.agent.ca))
    #expect(store.material.leaf.subject.description.contains("kiam-agent-third"))
  }

  /// Rewrites in quick succession that keep the size and inode are still seen: the signature of
  /// just-modified files is not trusted, so every check reads them.
  @Test func quickSameSizeRewritesAreNotMissed() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let metrics = KiamMetrics()
    let store = try await TLSMaterialStore(files: files(pki.agent), role: .client, metrics: metrics, logger: logger)
    func updateError() throws -> Double? {
      try PrometheusText(metrics.registry.emitToString()).value("grpc_client_tls_certificate_update_error")
    }
    let original = try String(contentsOfFile: pki.agent.certificate, encoding: .utf8)
    // Same length, different bytes: breaks the PEM.
    let broken = String(original.map { $0 == "A" ? "B" : $0 })
    #expect(broken.utf8.count == original.utf8.count && broken != original)
    try rewriteInPlace(pki.agent.certificate, with: broken)
    guard case .failed = await store.reload() else {
      Issue.record("the broken rewrite must be seen")
      return
    }
    #expect(try updateError() == 1)
    try rewriteInPlace(pki.agent.certificate, with: original)
    guard case .unchanged = await store.reload() else {
      Issue.record("the restored file must be read again (same material as before)")
      return
    }
    #expect(try updateError() == 0)
  }
}
