import KiamShared
import Synchronization
import Testing

@testable import KiamServer

/// kiam's pkg/k8s/pod_cache_test.go cases plus every IP-reuse ordering of the watch.
@Suite struct PodCacheTests {
  func pod(
    _ name: String, ip: String = "10.0.0.1", phase: PodPhase = .running, role: String = "",
    terminating: Bool = false, hostNetwork: Bool = false, created: Int64 = 0
  ) -> PodRecord {
    PodRecord(
      namespace: "default", name: name, uid: "uid-\(name)", nodeName: "node-1", ips: [ip], phase: phase,
      hostNetwork: hostNetwork, deletionTimestamp: terminating ? 1_700_000_000 : nil, creationTimestamp: created,
      role: role)
  }

  func synced(_ pods: [PodRecord] = []) -> PodCache {
    let cache = PodCache()
    cache.replaceAll(pods)
    return cache
  }

  @Test func notReadyUntilSynced() {
    let cache = PodCache()
    cache.upsert(pod("a"))
    #expect(cache.lookup(ip: "10.0.0.1") == .notReady)
    cache.markSynced()
    #expect(cache.lookup(ip: "10.0.0.1") == .found(pod("a")))
  }

  @Test func findsRunningPodAmongFailedOnes() {
    let running = pod("running", role: "r")
    let cache = synced([pod("failed", phase: .failed), running, pod("done", phase: .succeeded)])
    #expect(cache.lookup(ip: "10.0.0.1") == .found(running))
  }

  @Test func pendingAndUnknownCountAsLive() {
    #expect(synced([pod("p", phase: .pending)]).lookup(ip: "10.0.0.1") == .found(pod("p", phase: .pending)))
    #expect(synced([pod("u", phase: .unknown)]).lookup(ip: "10.0.0.1") == .found(pod("u", phase: .unknown)))
  }

  @Test func twoLivePodsAreMultiple() {
    let cache = synced([pod("a"), pod("b")])
    #expect(cache.lookup(ip: "10.0.0.1") == .multiple([pod("a"), pod("b")]))
  }

  @Test func unknownIPAndGarbage() {
    let cache = synced([pod("a")])
    #expect(cache.lookup(ip: "10.9.9.9") == .notFound)
    #expect(cache.lookup(ip: "not-an-ip") == .notFound)
    #expect(cache.lookup(ip: "") == .notFound)
  }

  @Test func hostNetworkPodsAreRefused() {
    let host = pod("host", ip: "10.0.0.10", hostNetwork: true)
    let cache = synced([host, pod("host2", ip: "10.0.0.10", hostNetwork: true)])
    #expect(cache.lookup(ip: "10.0.0.10") == .hostNetwork(host))
  }

  @Test func ipv6FormsMatch() {
    let v6 = PodRecord(namespace: "default", name: "v6", ips: [CanonicalIP.normalize("fd00:0:0::1")!], role: "r")
    let cache = synced([v6])
    #expect(cache.lookup(ip: "[fd00::1]") == .found(v6))
    #expect(cache.lookup(ip: "fd00::1") == .found(v6))
    #expect(cache.lookup(ip: "FD00:0000::0001") == .found(v6))
  }

  @Test func dualStackPodIsFoundByEitherIP() {
    let dual = PodRecord(namespace: "default", name: "dual", ips: ["10.0.0.7", "fd00::7"], role: "r")
    let cache = synced([dual])
    #expect(cache.lookup(ip: "10.0.0.7") == .found(dual))
    #expect(cache.lookup(ip: "fd00::7") == .found(dual))
  }

  // MARK: IP reuse: pod A (role a) had 10.0.0.1; pod B (role b) now has it.

  let podA = PodRecord(namespace: "default", name: "a", uid: "uid-a", ips: ["10.0.0.1"], role: "role-a")
  let podB = PodRecord(namespace: "default", name: "b", uid: "uid-b", ips: ["10.0.0.1"], role: "role-b")

  /// Never A's role: after each step the answer is B or no answer.
  func expectNeverA(_ cache: PodCache, _ step: String) {
    switch cache.lookup(ip: "10.0.0.1") {
    case .found(let pod): #expect(pod.role != "role-a", "\(step): answered with the old pod")
    default: break
    }
  }

  @Test func reuseOldDeletedThenNewAdded() {
    let cache = synced([podA])
    cache.delete(key: podA.key)
    expectNeverA(cache, "A deleted")
    #expect(cache.lookup(ip: "10.0.0.1") == .notFound)
    cache.upsert(podB)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
  }

  @Test func reuseNewAddedBeforeOldDeleted() {
    let cache = synced([podA])
    cache.upsert(podB)
    expectNeverA(cache, "B added while A still cached")
    #expect(cache.lookup(ip: "10.0.0.1") == .multiple([podA, podB]))
    cache.delete(key: podA.key)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
  }

  @Test func reuseOldFailed() {
    let cache = synced([podA])
    var failed = podA
    failed.phase = .failed
    cache.upsert(failed)
    expectNeverA(cache, "A failed")
    cache.upsert(podB)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
    // Other order: B first, then A marked failed.
    let other = synced([podA])
    other.upsert(podB)
    expectNeverA(other, "B added")
    other.upsert(failed)
    #expect(other.lookup(ip: "10.0.0.1") == .found(podB))
  }

  @Test func reuseOldTerminating() {
    var terminating = podA
    terminating.deletionTimestamp = 1_700_000_000
    // A terminating, B not yet seen: the caller may be B, so A's role is not given.
    let cache = synced([podA])
    cache.upsert(terminating)
    expectNeverA(cache, "A terminating")
    #expect(cache.lookup(ip: "10.0.0.1") == .notFound)
    cache.upsert(podB)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
    cache.delete(key: podA.key)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
    // B first, then A terminating.
    let other = synced([podA])
    other.upsert(podB)
    expectNeverA(other, "B added")
    other.upsert(terminating)
    #expect(other.lookup(ip: "10.0.0.1") == .found(podB))
  }

  @Test func reuseWithIPChangeOnUpdate() {
    // A's IP changes (its status is rewritten) and B arrives with A's old IP.
    let cache = synced([podA])
    var moved = podA
    moved.ips = ["10.0.0.2"]
    cache.upsert(moved)
    expectNeverA(cache, "A moved")
    cache.upsert(podB)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
    #expect(cache.lookup(ip: "10.0.0.2") == .found(moved))
  }

  @Test func recreatedStatefulSetPodReplacesItsPredecessor() {
    let cache = synced([podA])
    var reborn = podA
    reborn.uid = "uid-a2"
    reborn.role = "role-a2"
    cache.upsert(reborn)
    #expect(cache.lookup(ip: "10.0.0.1") == .found(reborn))
    #expect(cache.count == 1)
  }

  @Test func relistDropsPodsWhoseDeletionWasMissed() {
    let cache = synced([podA])
    cache.replaceAll([podB])
    #expect(cache.lookup(ip: "10.0.0.1") == .found(podB))
    #expect(cache.count == 1)
  }

  // MARK: Waiting for the watch

  @Test func waitIsWokenByTheEvent() async throws {
    let cache = synced()
    let clock = ContinuousClock()
    let started = clock.now
    async let result = cache.lookup(ip: "10.0.0.1", wait: .seconds(20))
    try await Task.sleep(for: .milliseconds(100))
    cache.upsert(podB)
    #expect(await result == .found(podB))
    // Woken by the event, long before the bound.
    #expect(clock.now - started < .seconds(10))
  }

  @Test func waitBoundIsHit() async {
    let cache = synced()
    let clock = ContinuousClock()
    let started = clock.now
    #expect(await cache.lookup(ip: "10.0.0.1", wait: .milliseconds(200)) == .notFound)
    #expect(clock.now - started >= .milliseconds(200))
  }

  @Test func ambiguityResolvedWithinTheWait() async throws {
    let cache = synced([podA, podB])
    async let result = cache.lookup(ip: "10.0.0.1", wait: .seconds(20))
    try await Task.sleep(for: .milliseconds(100))
    cache.delete(key: podA.key)
    #expect(await result == .found(podB))
  }

  @Test func unrelatedEventsDoNotEndTheWait() async throws {
    let cache = synced()
    async let result = cache.lookup(ip: "10.0.0.1", wait: .seconds(20))
    try await Task.sleep(for: .milliseconds(50))
    cache.upsert(pod("other", ip: "10.0.0.99"))
    try await Task.sleep(for: .milliseconds(50))
    cache.upsert(podB)
    #expect(await result == .found(podB))
  }

  @Test func cancelledWaiterReturns() async {
    let cache = synced()
    let task = Task { await cache.lookup(ip: "10.0.0.1", wait: .seconds(30)) }
    try? await Task.sleep(for: .milliseconds(50))
    task.cancel()
    #expect(await task.value == .notFound)
  }

  @Test func manyConcurrentWaitersAllWake() async throws {
    let cache = synced()
    try await withThrowingTaskGroup(of: PodLookupResult.self) { group in
      for _ in 0..<200 { group.addTask { await cache.lookup(ip: "10.0.0.1", wait: .seconds(20)) } }
      try await Task.sleep(for: .milliseconds(100))
      cache.upsert(podB)
      for try await result in group { #expect(result == .found(podB)) }
    }
  }

  @Test func observersSeeChanges() {
    let cache = synced()
    let seen = SeenBox()
    cache.observe { changed, removed in seen.add(changed.map(\.name), removed.map(\.name)) }
    cache.upsert(podA)
    cache.upsert(podA)  // no change, no notification
    cache.delete(key: podA.key)
    #expect(seen.changed == ["a"])
    #expect(seen.removed == ["a"])
  }
}

final class SeenBox: @unchecked Sendable {
  private let lock = NSLockish()
  private(set) var changed: [String] = []
  private(set) var removed: [String] = []
  func add(_ c: [String], _ r: [String]) {
    lock.run {
      changed += c
      removed += r
    }
  }
}

final class NSLockish: Sendable {
  private let mutex = Mutex(())
  func run(_ body: () -> Void) { mutex.withLock { _ in body() } }
}
