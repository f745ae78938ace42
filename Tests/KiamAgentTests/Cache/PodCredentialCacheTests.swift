import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct PodIdentityCacheTests {
  func table(_ dir: TemporaryDirectory, mac: String, device: String) throws -> NeighborTable {
    let path = try dir.write(
      "arp",
      """
      IP address       HW type     Flags       HW address            Mask     Device
      10.0.0.9         0x1         0x2         aa:bb:cc:00:00:01     *        veth1
      10.0.0.7         0x1         0x2         \(mac)     *        \(device)
      10.0.0.8         0x1         0x0         00:00:00:00:00:00     *        veth2
      """)
    return NeighborTable(path: path)
  }

  @Test func neighborTableParsing() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let neighbors = try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7")
    #expect(neighbors.link(for: "10.0.0.7") == "de:ad:be:ef:00:07@veth7")
    #expect(neighbors.link(for: "10.0.0.8") == nil)
    #expect(neighbors.link(for: "10.0.0.1") == nil)
    #expect(neighbors.link(for: "fd00::1") == nil)
  }

  @Test func identityIsTrustedWhileTheLinkIsUnchangedAndNotAfterReuse() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7"),
      identityMaxAge: .milliseconds(100))
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old"))
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "old-role")
    try await Task.sleep(for: .milliseconds(200))
    // Same MAC and interface: still the same pod.
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "old-role")
    // The IP now belongs to a new pod (new veth, new MAC): not trusted any more.
    _ = try table(dir, mac: "de:ad:be:ef:99:99", device: "veth42")
    try await Task.sleep(for: .milliseconds(200))
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    #expect(cache.outageCredentials(ip: "10.0.0.7", role: "old-role", wallNow: WallClock.system.nowPrecise()) == nil)
  }

  @Test func aLaggingServerNamingThePreviousPodIsNotBelieved() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7"),
      conflictLimit: .milliseconds(300))
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old")) == .accepted)
    // A new pod got the IP (new link); the server has not seen it and still names the old pod.
    _ = try table(dir, mac: "de:ad:be:ef:99:99", device: "veth42")
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old")) == .conflict)
    let oldPod = PodIdentity(role: "old-role", uid: "uid-old").connectionKey
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: oldPod) == nil)
    #expect(cache.outageIdentity(ip: "10.0.0.7") == nil)
    // The server learns about the new pod: accepted at once.
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .accepted)
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "new-role")
    // A pod whose interface really was re-created: the server's word wins after the limit.
    _ = try table(dir, mac: "de:ad:be:ef:11:11", device: "veth43")
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .conflict)
    try await Task.sleep(for: .milliseconds(400))
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .accepted)
  }

  @Test func keepAliveConnectionsKeepTheirPod() throws {
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r", uid: "u"))
    // A new connection without neighbor information needs the server again (window 0) ...
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    // ... further requests on a connection checked for this pod come from the same pod ...
    #expect(
      cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r", uid: "u").connectionKey)?.role == "r")
    // ... but not a connection checked for another pod, whose IP has moved on.
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r2", uid: "u2"))
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r", uid: "u").connectionKey) == nil)
    #expect(
      cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r2", uid: "u2").connectionKey)?.role
        == "r2")
  }

  @Test func aNewPodUIDDropsThePreviousCredentials() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"))
    let credentials = Kiam_Credentials.with {
      $0.accessKeyID = "ASIAOLD"
      $0.expiration = RFC3339.format(epochSeconds: WallClock.system.now() + 3600)
    }
    cache.store(
      ip: "10.0.0.7", role: "r",
      credentials: CachedCredentials(credentials, roleARN: nil, now: WallClock.system.nowPrecise()), podUID: "uid-a")
    #expect(
      cache.warmCredentials(ip: "10.0.0.7", role: "r", wallNow: WallClock.system.nowPrecise())?.credentials.accessKeyID
        == "ASIAOLD")
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r", uid: "uid-b"))
    #expect(cache.warmCredentials(ip: "10.0.0.7", role: "r", wallNow: WallClock.system.nowPrecise()) == nil)
  }
}
