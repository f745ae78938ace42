import Foundation
import GRPCCore
import KiamShared
import KiamTestSupport
import Testing

@testable import KiamServer

/// The gRPC service through the real server: mutual TLS, Kubernetes watch, policy, events.
@Suite(.serialized) struct KiamServiceTests {
  func seed(_ api: KubernetesAPITestServer) {
    api.upsertNamespace(TestNamespace(name: "apps", permitted: "arn:aws:iam::123456789012:role/app-.*"))
    api.upsertNamespace(TestNamespace(name: "locked"))
    api.upsertNamespace(TestNamespace(name: "broken", permitted: "(unclosed"))
    api.upsertPod(TestPod(namespace: "apps", name: "web", ip: "10.0.0.1", role: "app-web"))
    api.upsertPod(TestPod(namespace: "apps", name: "plain", ip: "10.0.0.2"))
    api.upsertPod(TestPod(namespace: "locked", name: "db", ip: "10.0.0.3", role: "app-db"))
    api.upsertPod(TestPod(namespace: "broken", name: "x", ip: "10.0.0.4", role: "app-x"))
    api.upsertPod(TestPod(namespace: "apps", name: "host", ip: "10.0.0.100", hostNetwork: true))
    api.upsertPod(TestPod(namespace: "apps", name: "dup-1", ip: "10.0.0.5", role: "app-a"))
    api.upsertPod(TestPod(namespace: "apps", name: "dup-2", ip: "10.0.0.5", role: "app-b"))
    api.upsertPod(
      TestPod(namespace: "apps", name: "cross", ip: "10.0.0.6", role: "arn:aws:iam::999999999999:role/app-other"))
  }

  @Test func kiamStatusMessagesAndEvents() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      seed(harness.api.api)
      let stub = StubCredentials { identity in
        if identity.role.name == "app-denied" {
          throw CredentialsError(code: "AccessDenied", message: "not authorized", isTransient: false)
        }
        return StubCredentials.fixed(identity)
      }
      try await harness.run(credentials: stub) { client async throws in
        #expect(await eventually { (try? await client.health()) == "ok" })
        // GetPodRole.
        #expect(try await client.role("10.0.0.1") == "app-web")
        #expect(try await client.role("10.0.0.2") == "")
        #expect(await rpcMessage { _ = try await client.role("10.9.9.9") } == (.unknown, "pod not found"))
        #expect(await rpcMessage { _ = try await client.role("10.0.0.5") } == (.unknown, "multiple running pods found"))
        let host = await rpcMessage { _ = try await client.role("10.0.0.100") }
        #expect(host.0 == .unknown && host.1.contains("uses the host network"))
        // GetPodCredentials.
        let creds = try await client.creds("10.0.0.1", "app-web")
        #expect(creds.code == "Success")
        #expect(creds.type == "AWS-HMAC")
        #expect(creds.accessKeyID == "ASIAAPP-WEB")
        #expect(creds.expiration == "2030-03-17T17:46:40Z")
        #expect(creds.lastUpdated == "2030-03-17T16:46:40Z")
        #expect(try await client.creds("10.0.0.1", "/app-web").accessKeyID == "ASIAAPP-WEB")
        #expect(try await client.creds("10.0.0.1", "arn:aws:iam::123456789012:role/app-web").code == "Success")
        #expect(await rpcMessage { _ = try await client.creds("10.9.9.9", "app-web") } == (.unknown, "no pod found"))
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.1", "app-other") } == (.unknown, "forbidden by policy"))
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.3", "app-db") } == (.unknown, "forbidden by policy"))
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.4", "app-x") } == (.unknown, "forbidden by policy"))
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.2", "anything") } == (.unknown, "role can't be empty"))
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.5", "app-a") } == (
            .unknown, "multiple running pods found"
          ))
        // Cross-account ARN, not matching apps' permitted expression.
        #expect(
          await rpcMessage {
            _ = try await client.creds("10.0.0.6", "arn:aws:iam::999999999999:role/app-other")
          } == (.unknown, "forbidden by policy"))
        // STS failure: the AWS code and message.
        harness.api.api.upsertPod(TestPod(namespace: "apps", name: "denied", ip: "10.0.0.7", role: "app-denied"))
        #expect(await eventually { (try? await client.role("10.0.0.7")) == "app-denied" })
        #expect(
          await rpcMessage { _ = try await client.creds("10.0.0.7", "app-denied") } == (
            .unknown, "AccessDenied: not authorized"
          ))
        // Events: forbidden and credential errors, aggregated.
        #expect(
          await eventually(timeout: .seconds(15)) {
            let events = harness.api.api.recordedEvents
            return events.contains { $0.reason == "KiamRoleForbidden" && $0.involvedName == "web" }
              && events.contains { $0.reason == "KiamRoleForbidden" && $0.involvedName == "db" }
              && events.contains { $0.reason == "KiamCredentialError" && $0.involvedName == "denied" }
          })
        let events = harness.api.api.recordedEvents
        let forbidden = try #require(events.first { $0.reason == "KiamRoleForbidden" && $0.involvedName == "web" })
        #expect(
          forbidden.message
            == "failed assuming role \"app-other\": requested 'app-other' but annotated with 'app-web', forbidden")
        let broken = try #require(events.first { $0.reason == "KiamRoleForbidden" && $0.involvedName == "x" })
        #expect(broken.message?.contains("error parsing regexp") == true)
        let credential = try #require(events.first { $0.reason == "KiamCredentialError" })
        #expect(credential.message == "failed retrieving credentials: AccessDenied: not authorized")
      }
      // Identities asked for carry the annotations.
      #expect(stub.calls.withLock { $0 }.contains { $0.role.arn == "arn:aws:iam::123456789012:role/app-web" })
    }
  }

  @Test func sessionNameAndExternalIDAnnotationsReachTheProvider() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      harness.api.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
      harness.api.api.upsertPod(
        TestPod(
          namespace: "apps", name: "w", ip: "10.0.1.1", role: "app-w",
          annotations: ["iam.amazonaws.com/session-name": "billing", "iam.amazonaws.com/external-id": "ext-123"]))
      let stub = StubCredentials()
      try await harness.run(credentials: stub) { client async throws in
        #expect(await eventually { (try? await client.role("10.0.1.1")) == "app-w" })
        _ = try await client.creds("10.0.1.1", "app-w")
      }
      let identity = try #require(stub.calls.withLock { $0 }.last)
      #expect(identity.sessionNameAnnotation == "billing")
      #expect(identity.externalID == "ext-123")
      #expect(identity.sessionName(defaultSession: "kiam") == "kiam-billing")
    }
  }

  @Test func notReadyUntilSyncedThenReady() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      seed(harness.api.api)
      harness.api.api.setLatency(.milliseconds(1500))
      try await harness.run { client async throws in
        let early = await rpcMessage { _ = try await client.health() }
        #expect(early.0 == .unavailable)
        #expect(early.1.contains("not synced"))
        let role = await rpcMessage { _ = try await client.role("10.0.0.1") }
        #expect(role.0 == .unavailable)
        harness.api.api.setLatency(.zero)
        #expect(await eventually { (try? await client.health()) == "ok" })
        #expect(try await client.role("10.0.0.1") == "app-web")
      }
    }
  }

  @Test func requestForAPodNotYetWatchedWaitsForIt() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      seed(harness.api.api)
      try await harness.run(configure: { $0.podWaitTimeout = .seconds(3) }) { client async throws in
        #expect(await eventually { (try? await client.health()) == "ok" })
        async let answer = client.creds("10.0.2.2", "app-new")
        try await Task.sleep(for: .milliseconds(300))
        harness.api.api.upsertPod(TestPod(namespace: "apps", name: "new", ip: "10.0.2.2", role: "app-new"))
        #expect(try await answer.code == "Success")
      }
    }
  }

  @Test func nodeIdentityBindsAgentsToTheirNode() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      seed(harness.api.api)
      harness.api.api.upsertPod(
        TestPod(namespace: "apps", name: "on-b", ip: "10.0.3.1", nodeName: "node-b", role: "app-b"))
      harness.api.api.setTokenIdentity(
        "agent-a",
        .init(
          username: "system:serviceaccount:kube-system:kiam-agent",
          extra: ["authentication.kubernetes.io/node-name": ["node-1"]]))
      try await harness.run(configure: { $0.requireNodeIdentity = true }) { client async throws in
        #expect(await eventually { (try? await client.health()) == "ok" })
        let bearer: Metadata = ["authorization": "Bearer agent-a"]
        // No token: like a Go kiam agent.
        #expect(await rpcMessage { _ = try await client.role("10.0.0.1") }.0 == .unauthenticated)
        #expect(
          await rpcMessage { _ = try await client.role("10.0.0.1", metadata: ["authorization": "Bearer forged"]) }.0
            == .unauthenticated)
        // Own node: fine. Other node: refused.
        #expect(try await client.role("10.0.0.1", metadata: bearer) == "app-web")
        #expect(try await client.creds("10.0.0.1", "app-web", metadata: bearer).code == "Success")
        let other = await rpcMessage { _ = try await client.creds("10.0.3.1", "app-b", metadata: bearer) }
        #expect(other.0 == .permissionDenied)
        #expect(other.1.contains("may not act for pod apps/on-b on node node-b"))
      }
    }
  }

  @Test func responsesNameThePodInMetadata() async throws {
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      seed(harness.api.api)
      let uid = harness.api.api.pod("apps/web")!.uid
      try await harness.run { client async throws in
        #expect(await eventually { (try? await client.health()) == "ok" })
        let response = try await client.getPodRole(
          Kiam_GetPodRoleRequest.with { $0.ip = "10.0.0.1" }, options: .defaults
        ) {
          $0.metadata
        }
        #expect(response[stringValues: "kiam-pod-uid"].first(where: { _ in true }) == uid)
        #expect(response[stringValues: "kiam-pod-name"].first(where: { _ in true }) == "apps/web")
      }
    }
  }
}
