import Crypto
import KiamShared
import Logging
import Synchronization

/// Verifies agents' projected service-account tokens (audience `kiam`) with the Kubernetes
/// TokenReview API and maps them to the agent pod's node.
///
/// The token is bound to the agent pod: the kubelet only mints tokens for pods on its own node,
/// so a compromised node can only prove its own identity. The node comes from the
/// `authentication.kubernetes.io/node-name` claim when the API server includes it, otherwise
/// from the agent pod (`pod-name` and `pod-uid` claims) in the pod cache. Results are cached for
/// a few minutes by token hash.
final class TokenReviewVerifier: AgentIdentityVerifier {
  private let client: KubernetesClient
  private let pods: PodCache
  private let logger: Logger
  private let cacheTTL: Duration
  private let cache = Mutex<[SHA256Digest: (node: String, until: ContinuousClock.Instant)]>([:])

  init(client: KubernetesClient, pods: PodCache, logger: Logger, cacheTTL: Duration = .seconds(300)) {
    self.client = client
    self.pods = pods
    self.logger = logger
    self.cacheTTL = cacheTTL
  }

  func nodeName(token: String) async throws -> String {
    let digest = SHA256.hash(data: Array(token.utf8))
    let now = ContinuousClock.now
    if let hit = cache.withLock({ $0[digest] }), hit.until > now { return hit.node }
    let review: TokenReviewResponse
    do {
      review = try await client.post(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        body: TokenReviewRequest(spec: .init(token: token, audiences: [AgentIdentityMetadata.audience])),
        resource: "tokenreviews", as: TokenReviewResponse.self)
    } catch {
      throw AgentIdentityError("cannot verify agent token: \(KiamError.describe(error))")
    }
    guard let status = review.status, status.authenticated == true else {
      throw AgentIdentityError("agent token rejected: \(review.status?.error ?? "not authenticated")")
    }
    if let audiences = status.audiences, !audiences.contains(AgentIdentityMetadata.audience) {
      throw AgentIdentityError("agent token is not for audience \(AgentIdentityMetadata.audience)")
    }
    let extra = status.user?.extra ?? [:]
    let node: String
    if let claimed = extra["authentication.kubernetes.io/node-name"]?.first, !claimed.isEmpty {
      node = claimed
    } else {
      guard let podName = extra["authentication.kubernetes.io/pod-name"]?.first,
        let username = status.user?.username, username.hasPrefix("system:serviceaccount:")
      else {
        throw AgentIdentityError("agent token is not bound to a pod (use a projected service-account token)")
      }
      let namespace = username.split(separator: ":").dropFirst(2).first.map(String.init) ?? ""
      guard let pod = pods.pod(key: "\(namespace)/\(podName)") else {
        throw AgentIdentityError("agent pod \(namespace)/\(podName) is not known")
      }
      if let uid = extra["authentication.kubernetes.io/pod-uid"]?.first, !uid.isEmpty, uid != pod.uid {
        throw AgentIdentityError("agent token belongs to an earlier pod named \(namespace)/\(podName)")
      }
      guard !pod.nodeName.isEmpty else { throw AgentIdentityError("agent pod \(namespace)/\(podName) has no node") }
      node = pod.nodeName
    }
    cache.withLock { cache in
      if cache.count > 10_000 { cache.removeAll() }
      cache[digest] = (node, now + cacheTTL)
    }
    return node
  }
}
