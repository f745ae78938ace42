import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct IMDSv2TokenTests {
  let tokens = IMDSv2Tokens()

  @Test func validForItsCallerUntilExpiry() {
    let token = tokens.issue(ip: "10.0.0.1", ttl: 60, now: 1000)
    #expect(tokens.check(token, ip: "10.0.0.1", now: 1059) == .valid)
    #expect(tokens.check(token, ip: "10.0.0.1", now: 1060) == .expired)
    #expect(tokens.check(token, ip: "10.0.0.2", now: 1001) == .wrongCaller)
  }

  @Test func forgedOrForeignTokensAreInvalid() {
    let token = tokens.issue(ip: "10.0.0.1", ttl: 60, now: 1000)
    #expect(IMDSv2Tokens().check(token, ip: "10.0.0.1", now: 1001) == .invalid)  // another agent's key
    var tampered = Array(token)
    tampered[8] = tampered[8] == "A" ? "B" : "A"
    #expect(tokens.check(String(tampered), ip: "10.0.0.1", now: 1001) == .invalid)
    #expect(tokens.check("garbage", ip: "10.0.0.1", now: 1001) == .invalid)
    #expect(tokens.check("", ip: "10.0.0.1", now: 1001) == .invalid)
  }

  func reloaded(_ store: TLSMaterialStore) async -> Bool {
    if case .reloaded = await store.reload() { return true }
    return false
  }

  /// Two agent processes on one node (a restart, an upgrade's old and new agent) share the key;
  /// another node does not; after the key file is rotated the previous key is accepted for the
  /// longest token lifetime.
  @Test func theKeyIsTheNodesAndSurvivesARotation() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let files = TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca)
    let logger = Logger(label: "test")
    let old = try await TLSMaterialStore(files: files, role: .client, metrics: nil, logger: logger)
    let new = try await TLSMaterialStore(files: files, role: .client, metrics: nil, logger: logger)
    let before = IMDSv2Tokens(store: old, host: "10.0.0.5")
    let after = IMDSv2Tokens(store: new, host: "10.0.0.5")
    let token = before.issue(ip: "10.1.0.7", ttl: 21600, now: 1000)
    #expect(after.check(token, ip: "10.1.0.7", now: 1001) == .valid)
    #expect(IMDSv2Tokens(store: new, host: "10.0.0.6").check(token, ip: "10.1.0.7", now: 1001) == .invalid)
    // cert-manager rotates the key.
    _ = try TestTLSFiles.write(
      try pki.ca.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: pki.ca, name: "agent", in: dir.path)
    try await Task.sleep(for: .milliseconds(50))
    #expect(await reloaded(new))
    let rotated = after.issue(ip: "10.1.0.7", ttl: 60, now: 2000)
    #expect(after.check(rotated, ip: "10.1.0.7", now: 2001) == .valid)
    #expect(after.check(token, ip: "10.1.0.7", now: 2001) == .valid, "a token of the previous key")
    #expect(before.check(rotated, ip: "10.1.0.7", now: 2001) == .invalid, "an agent still on the old key")
    // (The previous key is kept exactly as long as a token under it can live: 6 h after the
    // rotation is noticed, by when every such token has expired.)
    // A second rotation leaves only the newest key and the one before.
    _ = try TestTLSFiles.write(
      try pki.ca.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: pki.ca, name: "agent", in: dir.path)
    try await Task.sleep(for: .milliseconds(50))
    #expect(await reloaded(new))
    #expect(after.check(token, ip: "10.1.0.7", now: 3000) == .invalid)
    #expect(after.check(rotated, ip: "10.1.0.7", now: 2001) == .valid)
  }
}
