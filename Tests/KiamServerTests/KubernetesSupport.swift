import Foundation
import KiamShared
import KiamTestSupport
import Logging
import ServiceLifecycle

@testable import KiamServer

/// A running test API server with HTTPS and a token, plus a client configuration for it.
struct APIFixture {
  let api: KubernetesAPITestServer
  let port: Int
  let ca: TestCA
  let directory: TemporaryDirectory

  static func start(tokens: Set<String> = ["token-1"]) async throws -> APIFixture {
    let directory = try TemporaryDirectory(prefix: "kiam-k8s")
    let ca = try TestCA(name: "kubernetes-ca")
    let leaf = try ca.issue(
      commonName: "kube-apiserver", dnsNames: ["localhost", "kubernetes"], ipAddresses: ["127.0.0.1"])
    let api = try KubernetesAPITestServer(certificate: leaf, tokens: tokens)
    let port = try await api.start()
    return APIFixture(api: api, port: port, ca: ca, directory: directory)
  }

  func configuration(token: String? = "token-1", tokenFile: String? = nil) -> KubernetesConfiguration {
    KubernetesConfiguration(
      server: "https://127.0.0.1:\(port)", certificateAuthorityPEM: Array(ca.pem.utf8), token: token,
      tokenFile: tokenFile,
      source: "test")
  }

  func stop() async {
    await api.stop()
    directory.remove()
  }
}

/// Runs pod and namespace reflectors against a client while `body` runs.
func withReflectors<T: Sendable>(
  client: KubernetesClient, pods: PodCache, namespaces: NamespaceCache, pageSize: Int = 500,
  _ body: @Sendable () async throws -> T
) async throws -> T {
  let logger = Logger(label: "test")
  var podReflector = Reflector(
    client: client, path: "/api/v1/pods", resource: "pods", store: ClusterStores.pods(pods), logger: logger)
  podReflector.pageSize = pageSize
  podReflector.backoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(200))
  var namespaceReflector = Reflector(
    client: client, path: "/api/v1/namespaces", resource: "namespaces", store: ClusterStores.namespaces(namespaces),
    logger: logger)
  namespaceReflector.backoff = Backoff(initial: .milliseconds(20), maximum: .milliseconds(200))
  let reflectors: [any Service] = [podReflector, namespaceReflector]
  return try await withThrowingTaskGroup(of: T?.self) { group in
    for reflector in reflectors {
      group.addTask {
        try await reflector.run()
        return nil
      }
    }
    let result = try await body()
    group.cancelAll()
    return result
  }
}
