import GRPCCore
import KiamShared
import Testing

@testable import KiamAgent

/// ``PodCredentialCache/answer(_:ip:connectionPod:deadline:)``: the whole cold path of one
/// request, against a scripted server.
@Suite struct PodCredentialCacheAnswerTests {
  let ip = "10.0.0.7"
  let pod = PodIdentity(role: "app", uid: "uid-a")

  func cache(_ source: ScriptedSource) -> PodCredentialCache {
    PodCredentialCache(source: source, neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
  }

  func ask(_ cache: PodCredentialCache, _ question: PodCredentialCache.Question, connectionPod: String? = nil)
    async -> PodCredentialCache.Answer
  {
    await cache.answer(question, ip: ip, connectionPod: connectionPod, deadline: .now + .milliseconds(900))
  }

  func accessKey(_ answer: PodCredentialCache.Answer) -> String? {
    if case .credentials(let cached) = answer.outcome { return cached.accessKeyID }
    return nil
  }

  @Test func anUnknownCallerIsLookedUpThenFetchedAndTheConnectionKeepsItsPod() async throws {
    let source = ScriptedSource(.init(pods: [ip: pod]))
    let cache = cache(source)
    let first = await ask(cache, .credentials(role: "app"))
    #expect(accessKey(first) != nil)
    #expect(first.checkedPod == pod)
    #expect(first.outage == nil)
    #expect(source.made == ["GetPodRole \(ip)", "GetPodCredentials \(ip) app"])
    // The same connection again: trusted and held, no call.
    let again = await ask(cache, .credentials(role: "app"), connectionPod: pod.connectionKey)
    #expect(accessKey(again) == accessKey(first))
    #expect(again.checkedPod == nil)
    #expect(source.made.count == 2)
    // A new connection (no neighbour entry, window 0): confirmed again, the held credentials served.
    let newConnection = await ask(cache, .credentials(role: "app"))
    #expect(accessKey(newConnection) == accessKey(first))
    #expect(source.made == ["GetPodRole \(ip)", "GetPodCredentials \(ip) app", "GetPodRole \(ip)"])
  }

  @Test func aRoleThatIsNotThePodsIsRefusedWithoutAskingForCredentials() async {
    let source = ScriptedSource(.init(pods: [ip: pod, "10.0.0.8": PodIdentity(role: "", uid: "uid-b")]))
    let cache = cache(source)
    guard case .notThePodsRole = await ask(cache, .credentials(role: "other")).outcome else {
      Issue.record("another role was not refused")
      return
    }
    // `/app/` names the same role as `app`.
    #expect(accessKey(await ask(cache, .credentials(role: "/app/"))) != nil)
    let empty = await cache.answer(
      .credentials(role: "app"), ip: "10.0.0.8", connectionPod: nil, deadline: .now + .seconds(1))
    guard case .emptyRole = empty.outcome else {
      Issue.record("a pod without a role got \(empty.outcome)")
      return
    }
    #expect(!source.made.contains("GetPodCredentials \(ip) other"))
  }

  @Test func aPodTheServerHasNotSeenYetIsAskedAgainWithinTheBudget() async {
    // A server that answers "pod not found" at once (Go kiam's does not wait for the watch).
    let source = ScriptedSource(.init(pods: [ip: pod], unknownForCalls: 1))
    let cache = cache(source)
    let answer = await ask(cache, .roleName)
    guard case .identity(let found) = answer.outcome else {
      Issue.record("a pod the watch had not delivered yet got \(answer.outcome)")
      return
    }
    #expect(found == pod)
    #expect(source.made == ["GetPodRole \(ip)", "GetPodRole \(ip)"])
    // A pod that never shows up: no answer, and nothing kept for its IP.
    source.update { $0.pods = [:] }
    guard case .failed(let error) = await ask(cache, .roleName).outcome else {
      Issue.record("an unknown pod got an answer")
      return
    }
    #expect(error.isPodNotFound)
    #expect(cache.entry(ip) == nil)
  }

  @Test func withNoServerTheSamePodsLastAnswerStandsIn() async throws {
    let source = ScriptedSource(.init(pods: [ip: pod]))
    let cache = cache(source)
    let served = try #require(accessKey(await ask(cache, .credentials(role: "app"))))
    // The call fails with "unavailable": the known identity and credentials stand in.
    source.update { $0.failure = ServerCallError(code: .unavailable, message: "connection refused") }
    let afterFailure = await ask(cache, .credentials(role: "app"))
    #expect(accessKey(afterFailure) == served)
    guard case .afterFailure? = afterFailure.outage else {
      Issue.record("not marked as an outage answer: \(String(describing: afterFailure.outage))")
      return
    }
    let calls = source.made.count
    // Known to be unreachable: answered at once, no call at all.
    source.update { $0.unreachable = true }
    let atOnce = await ask(cache, .roleName)
    guard case .identity(let known) = atOnce.outcome, case .answeredAtOnce? = atOnce.outage else {
      Issue.record("not answered at once: \(atOnce.outcome)")
      return
    }
    #expect(known == pod)
    #expect(source.made.count == calls)
    // A failure that is not an outage (the server answered) has no stand-in.
    source.update {
      $0.unreachable = false
      $0.failure = ServerCallError(code: .unknown, message: "forbidden by policy")
    }
    guard case .failed(let error) = await ask(cache, .roleName).outcome else {
      Issue.record("a server's refusal was covered up")
      return
    }
    #expect(error.isForbidden)
  }

  @Test func aRefreshStoresTheNextCredentialsAndForgetsAGonePod() async throws {
    let source = ScriptedSource(.init(pods: [ip: pod]))
    let cache = cache(source)
    let first = try #require(accessKey(await ask(cache, .credentials(role: "app"))))
    try await cache.refresh(ip: ip, role: "app", timeout: .seconds(1))
    let refreshed = try #require(
      cache.heldCredentials(ip: ip, role: "app", wallNow: cache.clock.nowPrecise(), pod: pod.connectionKey))
    #expect(refreshed.accessKeyID != first)
    source.update { $0.pods = [:] }
    await #expect(throws: ServerCallError.self) { try await cache.refresh(ip: ip, role: "app", timeout: .seconds(1)) }
    #expect(cache.entry(ip) == nil)
  }
}
