import Synchronization

/// Keeps the credentials cache's set of used identities in step with the cluster: every live,
/// non-terminating pod whose role its namespace permits holds its identity; roles a namespace
/// forbids are never assumed (kiam prefetched those too, #7). Pod, namespace and base-ARN
/// changes all re-evaluate; decisions are memoized per (namespace, role) within a pass.
final class PrefetchCoordinator: Sendable {
  private let state: ServerState
  private let cache: CredentialsCache
  /// pod key → the identity it holds in the cache.
  private let held = Mutex<[String: RoleIdentity]>([:])

  init(state: ServerState, cache: CredentialsCache) {
    self.state = state
    self.cache = cache
  }

  /// Wires the coordinator to the caches' change notifications.
  func attach() {
    state.pods.observe { [weak self] changed, removed in self?.update(changed: changed, removed: removed) }
    state.namespaces.observe { [weak self] in self?.reevaluateAll() }
  }

  /// Re-evaluates every pod (a namespace's policy or the base ARN changed).
  func reevaluateAll() {
    update(changed: state.pods.all, removed: [], full: true)
  }

  private func update(changed: [PodRecord], removed: [PodRecord], full: Bool = false) {
    guard let resolver = state.resolver else { return }
    let policy = AssumeRolePolicy(resolver: resolver)
    held.withLock { held in
      var memo: [String: PolicyDecision] = [:]
      var desired: [String: RoleIdentity?] = [:]
      for pod in removed { desired[pod.key] = .some(nil) }
      for pod in changed { desired[pod.key] = identity(for: pod, policy: policy, memo: &memo) }
      if full {
        // Pods held but no longer present at all.
        let present = Set(changed.map(\.key))
        for key in held.keys where !present.contains(key) { desired[key] = .some(nil) }
      }
      for (key, wanted) in desired {
        let current = held[key]
        if current == wanted { continue }
        if let wanted {
          cache.retain(wanted)
          held[key] = wanted
        } else {
          held.removeValue(forKey: key)
        }
        if let current { cache.release(current) }
      }
    }
  }

  private func identity(for pod: PodRecord, policy: AssumeRolePolicy, memo: inout [String: PolicyDecision])
    -> RoleIdentity?
  {
    guard !pod.role.isEmpty, !pod.isCompleted, !pod.isTerminating, !pod.hostNetwork else { return nil }
    let memoKey = pod.namespace + "\u{0}" + pod.role
    let decision: PolicyDecision
    if let known = memo[memoKey] {
      decision = known
    } else {
      guard let role = try? policy.resolver.resolve(pod.role) else { return nil }
      decision = policy.namespaceDecision(
        role: role, annotation: pod.role, requestedRole: pod.role, namespace: state.namespaces.namespace(pod.namespace))
      memo[memoKey] = decision
    }
    guard case .allowed(let role) = decision else { return nil }
    return RoleIdentity(role: role, sessionNameAnnotation: pod.sessionName, externalID: pod.externalID)
  }

  /// Number of pods holding an identity (for tests).
  var heldCount: Int { held.withLock { $0.count } }
}
