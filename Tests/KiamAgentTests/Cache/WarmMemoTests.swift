import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct WarmMemoTests {
  let ip = "10.0.0.7"
  let pod = PodIdentity(role: "r", uid: "uid-a")

  func credentials(_ key: String, lifetime: Int64 = 3600) -> CachedCredentials {
    let issued = Kiam_Credentials.with {
      $0.accessKeyID = key
      $0.expiration = RFC3339.format(epochSeconds: WallClock.system.now() + lifetime)
    }
    return CachedCredentials(issued, roleARN: nil, now: WallClock.system.nowPrecise())
  }

  /// A connection's request: the cache answer and the memo the connection keeps.
  func request(
    _ cache: PodCredentialCache, _ memo: inout WarmMemo?, role: String = "r", pod: PodIdentity? = nil,
    wallNow: Double? = nil
  )
    -> String?
  {
    cache.warmCredentials(
      ip: ip, role: role, wallNow: wallNow ?? WallClock.system.nowPrecise(),
      connectionPod: (pod ?? self.pod).connectionKey, memo: &memo
    )?.credentials.accessKeyID
  }

  @Test func aCheckedConnectionIsAnsweredFromItsMemoUntilTheCacheChanges() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"))
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    let first = try #require(memo)
    #expect(request(cache, &memo) == "ASIAONE")
    #expect(memo === first, "unchanged cache: the same memo answers")
    // New credentials: the memo is stale and replaced.
    cache.store(ip: ip, role: "r", credentials: credentials("ASIATWO"), podUID: "uid-a")
    #expect(request(cache, &memo) == "ASIATWO")
    #expect(memo !== first)
    // Another role than the memo's is looked up, not taken from the memo.
    #expect(request(cache, &memo, role: "other") == nil)
  }

  @Test func aMemoNeverOutlivesThePodItWasMadeFor() {
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    // The server names a new pod for the IP: the old pod's connection gets nothing.
    cache.confirm(ip: ip, identity: PodIdentity(role: "r", uid: "uid-b"))
    #expect(request(cache, &memo) == nil)
    // Forgotten IP: nothing either, memo or not.
    cache.store(ip: ip, role: "r", credentials: credentials("ASIATHREE"), podUID: "uid-b")
    let podB = PodIdentity(role: "r", uid: "uid-b")
    #expect(request(cache, &memo, pod: podB) == "ASIATHREE")
    cache.forget(ip: ip)
    #expect(request(cache, &memo, pod: podB) == nil)
  }

  /// With our server, the agent's floor is the server's `--min-credential-lifetime` (sent with the
  /// credentials), and its background refresh starts half the server's `--session-refresh` before
  /// it; without (Go kiam), a quarter of the lifetime up to 15 minutes, refreshed at half up to 30.
  @Test func floorsFollowTheServer() {
    let now = WallClock.system.nowPrecise()
    let issued = Kiam_Credentials.with {
      $0.accessKeyID = "ASIAFLOOR"
      $0.expiration = RFC3339.format(epochSeconds: Int64(now) + 3600)
    }
    let ours = CachedCredentials(issued, roleARN: nil, minimumLifetime: 1800, refreshMargin: 300, now: now)
    #expect(ours.serveFloor == 1800)
    #expect(ours.refreshBelow == 1800 + 150)
    let goKiam = CachedCredentials(issued, roleARN: nil, now: now)
    #expect(abs(goKiam.serveFloor - 900) < 2)
    #expect(abs(goKiam.refreshBelow - 1800) < 2)
  }

  @Test func aMemoStopsAtTheServeFloorAndAtTheTrustWindow() async throws {
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), connectionTrust: .milliseconds(200))
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    // 100 s of 3600 left is below the floor (15 minutes): not served from the memo.
    #expect(request(cache, &memo, wallNow: WallClock.system.nowPrecise() + 3500) == nil)
    #expect(request(cache, &memo) == "ASIAONE")
    // The server has not confirmed the pod within the trust window: no answer without it.
    try await Task.sleep(for: .milliseconds(300))
    #expect(request(cache, &memo) == nil)
  }

  @Test func answeringFromTheMemoStillKeepsTheEntryFromEviction() throws {
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), touchInterval: .zero)
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    let before = try #require(cache.entry(ip)).lastUsed
    let first = memo
    #expect(request(cache, &memo) == "ASIAONE")
    #expect(memo !== first, "touched: a renewed memo")
    #expect(try #require(cache.entry(ip)).lastUsed > before)
  }

  @Test func concurrentChangesAndMemoReadsNeverServeAnotherPodsCredentials() async {
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    let podB = PodIdentity(role: "r", uid: "uid-b")
    cache.store(ip: ip, role: "r", credentials: credentials("ASIA-A"), podUID: "uid-a")
    let readersDone = Counter()
    let readers = [pod, podB]
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        // The IP's pod alternates until both readers are through.
        var round = 0
        while readersDone.value.load(ordering: .acquiring) < readers.count {
          let (uid, key) = round % 2 == 0 ? ("uid-b", "ASIA-B") : ("uid-a", "ASIA-A")
          cache.store(ip: ip, role: "r", credentials: credentials(key), podUID: uid)
          round += 1
        }
      }
      for reader in readers {
        group.addTask {
          defer { readersDone.value.add(1, ordering: .releasing) }
          var memo: WarmMemo?
          var answered = 0
          // Until answered plenty, memo or not (bounded, so a broken cache fails instead of hanging).
          for _ in 0..<2_000_000 where answered < 20_000 {
            let answer = cache.warmCredentials(
              ip: ip, role: "r", wallNow: WallClock.system.nowPrecise(), connectionPod: reader.connectionKey,
              memo: &memo)
            guard let answer else { continue }
            answered += 1
            // Always one pod's own credentials: the memo's copy or the entry as it is.
            #expect(answer.credentials.accessKeyID == (answer.identity.uid == "uid-a" ? "ASIA-A" : "ASIA-B"))
            if let memo {
              #expect(memo.credentials.accessKeyID == (memo.identity.uid == "uid-a" ? "ASIA-A" : "ASIA-B"))
            }
          }
          #expect(answered == 20_000, "\(reader.uid) was answered")
        }
      }
    }
  }
}

/// A counter tasks share.
private final class Counter: Sendable {
  let value = Atomic<Int>(0)
}

extension CachedCredentials: Equatable {
  public static func == (a: CachedCredentials, b: CachedCredentials) -> Bool {
    a.accessKeyID == b.accessKeyID && a.expiration == b.expiration
  }
}
