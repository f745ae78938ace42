import Foundation
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import KiamServer

@Suite(.serialized) struct KubernetesConfigurationTests {
  let logger = Logger(label: "test")

  @Test func inClusterConfigurationWorksAndFollowsTokenRotation() async throws {
    let fixture = try await APIFixture.start(tokens: ["sa-token-1"])
    try await withCleanup({ await fixture.stop() }) {
      let sa = "\(fixture.directory.path)/serviceaccount"
      try FileManager.default.createDirectory(atPath: sa, withIntermediateDirectories: true)
      try "sa-token-1".write(toFile: "\(sa)/token", atomically: true, encoding: .utf8)
      try fixture.ca.pem.write(toFile: "\(sa)/ca.crt", atomically: true, encoding: .utf8)
      let configuration = try KubernetesConfiguration.inCluster(
        environment: ["KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": "\(fixture.port)"],
        serviceAccountDirectory: sa)
      #expect(configuration.server == "https://127.0.0.1:\(fixture.port)")
      #expect(configuration.tokenFile == "\(sa)/token")
      let client = try KubernetesClient(configuration: configuration, logger: logger)
      _ = try await client.list(
        "/api/v1/namespaces", resource: "namespaces", limit: 5, continueToken: nil, as: NamespaceObject.self)
      // The kubelet rotates the projected token (atomic file swap); the old one stops working.
      try "sa-token-2".write(toFile: "\(sa)/token", atomically: true, encoding: .utf8)
      fixture.api.setAcceptedTokens(["sa-token-2"])
      _ = try await client.list(
        "/api/v1/namespaces", resource: "namespaces", limit: 5, continueToken: nil, as: NamespaceObject.self)
      try await client.shutdown()
    }
  }

  @Test func inClusterWithoutEnvironmentExplains() {
    #expect(throws: KiamError.self) { try KubernetesConfiguration.inCluster(environment: [:]) }
    do {
      _ = try KubernetesConfiguration.inCluster(environment: [:])
    } catch let error as KiamError {
      #expect(error.message.contains("--kubeconfig"))
    } catch {}
  }

  func writeKubeconfig(_ fixture: APIFixture, user: String, cluster: String, context: String = "test") throws -> String
  {
    try fixture.directory.write(
      "kubeconfig",
      """
      apiVersion: v1
      kind: Config
      current-context: \(context)
      clusters:
      - name: other
        cluster:
          server: https://10.255.255.1:6443
      - name: test-cluster
        cluster:
      \(cluster)
      contexts:
      - name: other
        context:
          cluster: other
          user: nobody
      - name: test
        context:
          cluster: test-cluster
          user: test-user
      users:
      - name: nobody
        user:
          token: nope
      - name: test-user
        user:
      \(user)
      """)
  }

  @Test func kubeconfigWithCAFileAndToken() async throws {
    let fixture = try await APIFixture.start(tokens: ["kc-token"])
    try await withCleanup({ await fixture.stop() }) {
      try fixture.directory.write("certs/ca.pem", fixture.ca.pem)
      let path = try writeKubeconfig(
        fixture, user: "    token: kc-token",
        cluster: "    server: https://127.0.0.1:\(fixture.port)\n    certificate-authority: certs/ca.pem")
      let configuration = try KubernetesConfiguration.kubeconfig(path: path)
      #expect(configuration.token == "kc-token")
      let client = try KubernetesClient(configuration: configuration, logger: logger)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 1, continueToken: nil, as: PodObject.self)
      try await client.shutdown()
    }
  }

  @Test func kubeconfigWithCADataAndTokenFile() async throws {
    let fixture = try await APIFixture.start(tokens: ["file-token"])
    try await withCleanup({ await fixture.stop() }) {
      try fixture.directory.write("tok", "file-token\n")
      let data = Data(fixture.ca.pem.utf8).base64EncodedString()
      let path = try writeKubeconfig(
        fixture, user: "    tokenFile: tok",
        cluster: "    server: https://127.0.0.1:\(fixture.port)\n    certificate-authority-data: \(data)")
      let configuration = try KubernetesConfiguration.kubeconfig(path: path)
      #expect(configuration.tokenFile == "\(fixture.directory.path)/tok")
      let client = try KubernetesClient(configuration: configuration, logger: logger)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 1, continueToken: nil, as: PodObject.self)
      try await client.shutdown()
    }
  }

  @Test func kubeconfigInsecureSkipVerifyAndClientCertificate() async throws {
    let fixture = try await APIFixture.start(tokens: [])
    try await withCleanup({ await fixture.stop() }) {
      let clientLeaf = try fixture.ca.issue(commonName: "kiam-server", usages: [.clientAuth])
      let certData = Data(clientLeaf.certificatePEM.utf8).base64EncodedString()
      let keyData = Data(clientLeaf.keyPEM.utf8).base64EncodedString()
      let path = try writeKubeconfig(
        fixture, user: "    client-certificate-data: \(certData)\n    client-key-data: \(keyData)",
        cluster: "    server: https://127.0.0.1:\(fixture.port)\n    insecure-skip-tls-verify: true")
      let configuration = try KubernetesConfiguration.kubeconfig(path: path)
      #expect(configuration.insecureSkipTLSVerify)
      #expect(configuration.clientCertificatePEM != nil)
      #expect(configuration.clientKeyPEM != nil)
      let client = try KubernetesClient(configuration: configuration, logger: logger)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 1, continueToken: nil, as: PodObject.self)
      try await client.shutdown()
    }
  }

  @Test func kubeconfigWithoutTheRightCAFails() async throws {
    let fixture = try await APIFixture.start(tokens: [])
    try await withCleanup({ await fixture.stop() }) {
      let path = try writeKubeconfig(
        fixture, user: "    token: x", cluster: "    server: https://127.0.0.1:\(fixture.port)")
      let client = try KubernetesClient(
        configuration: try KubernetesConfiguration.kubeconfig(path: path), logger: logger)
      await #expect(throws: KubernetesAPIError.self) {
        _ = try await client.list("/api/v1/pods", resource: "pods", limit: 1, continueToken: nil, as: PodObject.self)
      }
      try await client.shutdown()
    }
  }

  /// A kubeconfig without a CA trusts the system roots, found as Go (client-go) finds them.
  @Test func kubeconfigWithoutACATrustsTheSystemRoots() async throws {
    let fixture = try await APIFixture.start(tokens: ["t"])
    try await withCleanup({ await fixture.stop() }) {
      let path = try writeKubeconfig(
        fixture, user: "    token: t", cluster: "    server: https://127.0.0.1:\(fixture.port)")
      let configuration = try KubernetesConfiguration.kubeconfig(path: path)
      #expect(configuration.certificateAuthorityPEM == nil)
      let bundle = try fixture.directory.write(
        "roots/bundle.pem", "# the cluster's CA among the system roots\n" + fixture.ca.pem)
      let roots = SystemTrustRoots.load(environment: ["SSL_CERT_FILE": bundle, "SSL_CERT_DIR": "/nonexistent"])
      #expect(roots.certificates.count == 1)
      let client = try KubernetesClient(configuration: configuration, logger: logger, systemRoots: roots)
      _ = try await client.list("/api/v1/pods", resource: "pods", limit: 1, continueToken: nil, as: PodObject.self)
      try await client.shutdown()
    }
  }

  @Test func kubeconfigErrorsAreExplained() async throws {
    let fixture = try await APIFixture.start(tokens: [])
    try await withCleanup({ await fixture.stop() }) {
      func message(_ text: String) -> String {
        let path = (try? fixture.directory.write("bad", text)) ?? ""
        do {
          _ = try KubernetesConfiguration.kubeconfig(path: path)
          return "no error"
        } catch let error as KiamError {
          return error.message
        } catch {
          return "\(error)"
        }
      }
      #expect(message("not: [yaml").contains("not a valid kubeconfig"))
      #expect(message("apiVersion: v1\ncontexts: []\n").contains("no current-context"))
      #expect(message("current-context: x\ncontexts: []\n").contains("current-context \"x\" not found"))
      #expect(
        message(
          """
          current-context: c
          contexts: [{name: c, context: {cluster: k, user: u}}]
          clusters: [{name: k, cluster: {server: "https://1.2.3.4"}}]
          users: [{name: u, user: {exec: {command: aws}}}]
          """
        ).contains("exec or auth-provider plugin"))
      #expect(
        message(
          """
          current-context: c
          contexts: [{name: c, context: {cluster: k}}]
          clusters: [{name: k, cluster: {server: "https://1.2.3.4", certificate-authority: /nonexistent/ca.pem}}]
          """
        ).contains("/nonexistent/ca.pem"))
    }
  }
}

@Suite(.serialized) struct EventAndIdentityTests {
  let logger = Logger(label: "test")
  let pod = PodRecord(
    namespace: "apps", name: "web-1", uid: "uid-web-1", nodeName: "node-a", ips: ["10.0.0.1"], role: "r")

  @Test func repeatedWarningsAggregateIntoOneEvent() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let recorder = KubernetesEventRecorder(client: client, logger: logger, minInterval: .milliseconds(200))
      // Five at once, before the recorder runs: one Event of count 5 (recorded while it already
      // ran, the first could be written alone on a busy machine; seen once in a stock Debian root).
      for _ in 0..<5 {
        recorder.warning(pod: pod, reason: EventReason.roleForbidden, message: "failed assuming role \"x\": no")
      }
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await recorder.run() }
        #expect(await eventually { fixture.api.recordedEvents.count == 1 })
        for _ in 0..<3 {
          recorder.warning(pod: pod, reason: EventReason.roleForbidden, message: "failed assuming role \"x\": no")
          try await Task.sleep(for: .milliseconds(50))
        }
        recorder.warning(
          pod: pod, reason: EventReason.credentialError, message: "failed retrieving credentials: AccessDenied: no")
        #expect(
          await eventually {
            let events = fixture.api.recordedEvents
            return events.filter { $0.verb == "create" }.count == 2
              && events.contains { $0.verb == "patch" && $0.count == 8 }
          })
        group.cancelAll()
      }
      let creates = fixture.api.recordedEvents.filter { $0.verb == "create" }
      let forbidden = try #require(creates.first { $0.reason == "KiamRoleForbidden" })
      #expect(forbidden.namespace == "apps")
      #expect(forbidden.involvedName == "web-1")
      #expect(forbidden.count == 5)
      let object = try JSONSerialization.jsonObject(with: forbidden.json) as? [String: Any]
      #expect(object?["type"] as? String == "Warning")
      #expect((object?["source"] as? [String: Any])?["component"] as? String == "kiam.server")
      #expect(((object?["involvedObject"] as? [String: Any])?["uid"] as? String) == "uid-web-1")
      // Writes are rate-limited: far fewer API calls than warnings.
      #expect(fixture.api.recordedEvents.count < 9)
      try await client.shutdown()
    }
  }

  @Test func tokenReviewMapsAgentsToNodes() async throws {
    let fixture = try await APIFixture.start()
    try await withCleanup({ await fixture.stop() }) {
      let client = try KubernetesClient(configuration: fixture.configuration(), logger: logger)
      let pods = PodCache()
      pods.replaceAll([
        PodRecord(
          namespace: "kube-system", name: "kiam-agent-x", uid: "agent-uid", nodeName: "node-b", ips: ["10.0.0.10"])
      ])
      fixture.api.setTokenIdentity(
        "with-node-claim",
        .init(
          username: "system:serviceaccount:kube-system:kiam-agent",
          extra: ["authentication.kubernetes.io/node-name": ["node-a"]]))
      fixture.api.setTokenIdentity(
        "with-pod-claim",
        .init(
          username: "system:serviceaccount:kube-system:kiam-agent",
          extra: [
            "authentication.kubernetes.io/pod-name": ["kiam-agent-x"],
            "authentication.kubernetes.io/pod-uid": ["agent-uid"],
          ]))
      fixture.api.setTokenIdentity(
        "stale-pod",
        .init(
          username: "system:serviceaccount:kube-system:kiam-agent",
          extra: [
            "authentication.kubernetes.io/pod-name": ["kiam-agent-x"],
            "authentication.kubernetes.io/pod-uid": ["old-uid"],
          ]))
      fixture.api.setTokenIdentity(
        "wrong-audience",
        .init(
          username: "system:serviceaccount:kube-system:kiam-agent", extra: [:],
          audiences: ["https://kubernetes.default.svc"]))
      let verifier = TokenReviewVerifier(client: client, pods: pods, logger: logger)
      #expect(try await verifier.nodeName(token: "with-node-claim") == "node-a")
      #expect(try await verifier.nodeName(token: "with-pod-claim") == "node-b")
      await #expect(throws: AgentIdentityError.self) { try await verifier.nodeName(token: "stale-pod") }
      await #expect(throws: AgentIdentityError.self) { try await verifier.nodeName(token: "wrong-audience") }
      await #expect(throws: AgentIdentityError.self) { try await verifier.nodeName(token: "unknown") }
      // Cached: a second call does not ask the API again.
      let reviews = fixture.api.requestLog.filter { $0.contains("tokenreviews") }.count
      #expect(try await verifier.nodeName(token: "with-node-claim") == "node-a")
      #expect(fixture.api.requestLog.filter { $0.contains("tokenreviews") }.count == reviews)
      try await client.shutdown()
    }
  }
}
