import Foundation
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import KiamServer

/// The hand-written client and reflector against the API test server's real wire format.
@Suite(.serialized) struct KubernetesWatchTests {
  let logger = Logger(label: "test")

  @Test func listsInPagesThenFollowsTheWatch() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.seedPods(
        (0..<1234).map { TestPod(name: "pod-\($0)", ip: "10.1.\($0 / 256).\($0 % 256)", role: "r\($0 % 7)") })
      fixture.api.upsertNamespace(TestNamespace(name: "default", permitted: ".*"))
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        #expect(await eventually { pods.isSynced && namespaces.isSynced })
        #expect(pods.count == 1234)
        #expect(fixture.api.requestLog.filter { $0.contains("/api/v1/pods?limit=500") }.count == 3)
        guard case .found(let pod) = pods.lookup(ip: "10.1.0.5") else {
          Issue.record("pod-5 not found")
          return
        }
        #expect(pod.role == "r5")
        #expect(pod.name == "pod-5")
        #expect(pod.nodeName == "node-1")
        // Live events.
        fixture.api.upsertPod(TestPod(name: "new", ip: "10.2.0.1", role: "fresh"))
        #expect(await eventually { pods.lookup(ip: "10.2.0.1") != .notFound })
        fixture.api.deletePod(namespace: "default", name: "pod-5")
        #expect(await eventually { pods.lookup(ip: "10.1.0.5") == .notFound })
        fixture.api.upsertNamespace(TestNamespace(name: "default", permitted: "^arn:.*$"))
        #expect(await eventually { namespaces.namespace("default")?.permitted == "^arn:.*$" })
      }
      try await client.shutdown()
    }
  }

  @Test func droppedStreamsResumeFromTheLastVersionWithoutRelisting() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertPod(TestPod(name: "a", ip: "10.0.0.1", role: "a"))
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        #expect(await eventually { pods.isSynced && fixture.api.openWatches == 2 })
        let lists = fixture.api.listRequestCount
        fixture.api.dropWatches()
        // Changes while no watch is open are replayed when the watch resumes.
        fixture.api.upsertPod(TestPod(name: "b", ip: "10.0.0.2", role: "b"))
        fixture.api.deletePod(namespace: "default", name: "a")
        #expect(
          await eventually { pods.lookup(ip: "10.0.0.2") != .notFound && pods.lookup(ip: "10.0.0.1") == .notFound })
        #expect(fixture.api.listRequestCount == lists)
        #expect(fixture.api.watchRequestCount >= 4)
      }
      try await client.shutdown()
    }
  }

  @Test func bookmarksMoveTheResumeVersion() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        #expect(await eventually { pods.isSynced && fixture.api.openWatches == 2 })
        // Unrelated namespace traffic moves the global version; the pod watch only learns it by bookmark.
        for i in 0..<5 { fixture.api.upsertNamespace(TestNamespace(name: "ns-\(i)")) }
        let bookmarkVersion = fixture.api.currentResourceVersion
        fixture.api.sendBookmarks()
        try await Task.sleep(for: .milliseconds(200))
        fixture.api.dropWatches()
        #expect(
          await eventually {
            fixture.api.requestLog.contains {
              $0.contains("/api/v1/pods?watch=true&resourceVersion=\(bookmarkVersion)&allowWatchBookmarks=true")
            }
          })
      }
      try await client.shutdown()
    }
  }

  @Test func goneWatchVersionRelistsAndCatchesMissedDeletes() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertPod(TestPod(name: "a", ip: "10.0.0.1", role: "a"))
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        #expect(await eventually { pods.isSynced && fixture.api.openWatches == 2 })
        let lists = fixture.api.listRequestCount
        fixture.api.dropWatches()
        // While disconnected: a delete and an add, then history is compacted away.
        fixture.api.deletePod(namespace: "default", name: "a")
        fixture.api.upsertPod(TestPod(name: "b", ip: "10.0.0.2", role: "b"))
        fixture.api.compact()
        #expect(
          await eventually { pods.lookup(ip: "10.0.0.1") == .notFound && pods.lookup(ip: "10.0.0.2") != .notFound })
        #expect(fixture.api.listRequestCount > lists)
      }
      try await client.shutdown()
    }
  }

  @Test func expiredContinueTokenIsGone() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.seedPods((0..<10).map { TestPod(name: "p\($0)", ip: "10.0.0.\($0)") })
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let first = try await client.list(
        "/api/v1/pods", resource: "pods", limit: 3, continueToken: nil, as: PodObject.self)
      #expect(first.items.count == 3)
      let token = try #require(first.metadata.continue)
      fixture.api.upsertPod(TestPod(name: "later", ip: "10.0.1.1"))
      fixture.api.compact()
      do {
        _ = try await client.list("/api/v1/pods", resource: "pods", limit: 3, continueToken: token, as: PodObject.self)
        Issue.record("expected 410")
      } catch let error as KubernetesAPIError {
        #expect(error.isGone)
      }
      try await client.shutdown()
    }
  }

  @Test func slowResponsesStillSync() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertPod(TestPod(name: "a", ip: "10.0.0.1", role: "a"))
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      fixture.api.setLatency(.milliseconds(400))
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        #expect(!pods.isSynced)
        #expect(await eventually { pods.isSynced && namespaces.isSynced })
      }
      try await client.shutdown()
    }
  }

  @Test func forbiddenNamesTheMissingVerbAndRecovers() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      fixture.api.setForbidden(["list pods"])
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      do {
        _ = try await client.list("/api/v1/pods", resource: "pods", limit: 10, continueToken: nil, as: PodObject.self)
        Issue.record("expected 403")
      } catch let error as KubernetesAPIError {
        #expect(error.statusCode == 403)
        #expect(error.description.contains("RBAC must allow verb \"list\" on resource \"pods\""))
      }
      let pods = PodCache()
      let namespaces = NamespaceCache(strict: true)
      try await withReflectors(client: client, pods: pods, namespaces: namespaces) {
        try await Task.sleep(for: .milliseconds(300))
        #expect(!pods.isSynced)
        fixture.api.setForbidden([])
        #expect(await eventually { pods.isSynced })
      }
      try await client.shutdown()
    }
  }

  @Test func unauthorizedExplainsAndTokenFileRotationIsPickedUp() async throws {
    let fixture = try await APIFixture.start(tokens: ["old-token"])
    try await withCleanup({ await fixture.stop() }) {
      fixture.api.upsertNamespace(TestNamespace(name: "default"))
      let tokenFile = try fixture.directory.write("token", "old-token\n")
      let client = try KubernetesClient(
        configuration: fixture.configuration(token: nil, tokenFile: tokenFile), logger: logger)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 10, continueToken: nil, as: PodObject.self)
      // The API rotates to a new token; the file changes too. The cached token gets 401, which makes
      // the client re-read the file and retry.
      fixture.api.setAcceptedTokens(["new-token"])
      try "new-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 10, continueToken: nil, as: PodObject.self)
      // A token nobody accepts: a clear 401 message.
      fixture.api.setAcceptedTokens(["other"])
      do {
        _ = try await client.list("/api/v1/pods", resource: "pods", limit: 10, continueToken: nil, as: PodObject.self)
        Issue.record("expected 401")
      } catch let error as KubernetesAPIError {
        #expect(error.statusCode == 401)
        #expect(error.description.contains("check the service account token"))
      }
      try await client.shutdown()
    }
  }

  @Test func unreachableAPIIsReported() async throws {
    let port = try FreePort.next()
    let client = try KubernetesClient(
      configuration: KubernetesConfiguration(server: "https://127.0.0.1:\(port)", source: "test"), logger: logger)
    do {
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 10, continueToken: nil, as: PodObject.self)
      Issue.record("expected an error")
    } catch let error as KubernetesAPIError {
      #expect(error.statusCode == 0)
      #expect(error.description.contains("unreachable"))
    }
    try await client.shutdown()
  }
}
