import KiamShared
import Synchronization

/// Every pod of the cluster, indexed by IP, with the rule that decides which pod an IP belongs to.
///
/// ## The IP rule
/// For an IP, take the cached pods that claim it (`status.podIP` or `status.podIPs`):
/// 1. Succeeded and Failed pods are ignored: they no longer run.
/// 2. Terminating pods (deletion requested) are ignored too. Their network may already be torn
///    down and the IP handed to a new pod that the watch has not delivered yet; answering with
///    the terminating pod would give the new pod the old pod's role (kiam #48, #499). A
///    terminating pod keeps the credentials its SDK already holds (at least the minimum
///    lifetime), it only gets no new ones.
/// 3. Exactly one remaining pod: the IP is that pod's.
/// 4. More than one: `multiple running pods found` (a stale entry; the watch will resolve it).
/// 5. None, but a host-network pod claims the IP: refused, host-network pods share the node IP.
/// 6. None at all: not found.
/// Cases 4 and 6 are not final: a lookup waits (woken by watch events, not polling) up to its
/// bound for the watch to settle before answering. So whatever order the events arrive in, a
/// request from a reused IP gets the new pod's role or nothing, never the old pod's.
public final class PodCache: Sendable {
  private struct Waiter {
    let id: UInt64
    let continuation: CheckedContinuation<Void, Never>
  }

  private struct State {
    var pods: [String: PodRecord] = [:]
    var byIP: [String: [String]] = [:]
    var synced = false
    var waiters: [String: [Waiter]] = [:]
    var nextWaiterID: UInt64 = 0
    var strings = Set<String>()
  }

  private let state = Mutex(State())
  private let observers = Mutex<[@Sendable ([PodRecord], [PodRecord]) -> Void]>([])

  public init() {}

  // MARK: Reading

  /// True once the initial list has been applied.
  public var isSynced: Bool { state.withLock { $0.synced } }

  /// Number of cached pods.
  public var count: Int { state.withLock { $0.pods.count } }

  /// A copy of every cached pod.
  public var all: [PodRecord] { state.withLock { Array($0.pods.values) } }

  /// The pod with this `namespace/name`.
  public func pod(key: String) -> PodRecord? { state.withLock { $0.pods[key] } }

  /// Resolves `ip` now, without waiting.
  public func lookup(ip: String) -> PodLookupResult {
    guard let canonical = CanonicalIP.normalize(ip) else { return .notFound }
    return state.withLock { Self.resolve(canonical, in: $0) }
  }

  /// Resolves `ip`, waiting up to `wait` for the watch when the answer is not final yet.
  public func lookup(ip: String, wait: Duration) async -> PodLookupResult {
    guard let canonical = CanonicalIP.normalize(ip) else { return .notFound }
    let clock = ContinuousClock()
    let deadline = clock.now + wait
    while true {
      let immediate = state.withLock { Self.resolve(canonical, in: $0) }
      if immediate.isDefinitive || clock.now >= deadline { return immediate }
      let outcome = await waitForChange(ip: canonical, deadline: deadline)
      if case .resolved(let result) = outcome { return result }
      if case .timedOut = outcome {
        return state.withLock { Self.resolve(canonical, in: $0) }
      }
    }
  }

  // MARK: Writing

  /// Inserts or replaces a pod.
  public func upsert(_ pod: PodRecord) { apply(upserts: [pod], deletes: []) }

  /// Removes a pod.
  public func delete(key: String) { apply(upserts: [], deletes: [key]) }

  /// Replaces the whole content (initial list and relists); pods missing from `pods` are deleted.
  public func replaceAll(_ pods: [PodRecord]) {
    let keys = Set(pods.map(\.key))
    let stale = state.withLock { state in state.pods.keys.filter { !keys.contains($0) } }
    apply(upserts: pods, deletes: stale, markSynced: true)
  }

  /// Marks the cache synced (used when the initial list is applied in pages).
  public func markSynced() {
    state.withLock { $0.synced = true }
  }

  /// Registers `observer(changed, removed)`, called after every change outside the lock.
  public func observe(_ observer: @escaping @Sendable (_ changed: [PodRecord], _ removed: [PodRecord]) -> Void) {
    observers.withLock { $0.append(observer) }
  }

  private func apply(upserts: [PodRecord], deletes: [String], markSynced: Bool = false) {
    var changed: [PodRecord] = []
    var removed: [PodRecord] = []
    let wake: [Waiter] = state.withLock { state in
      var touched = Set<String>()
      for key in deletes {
        guard let old = state.pods.removeValue(forKey: key) else { continue }
        Self.unindex(old, in: &state)
        touched.formUnion(old.ips)
        removed.append(old)
      }
      for var pod in upserts {
        pod.namespace = Self.intern(pod.namespace, in: &state)
        pod.nodeName = Self.intern(pod.nodeName, in: &state)
        pod.serviceAccountName = Self.intern(pod.serviceAccountName, in: &state)
        if let old = state.pods[pod.key] {
          if old == pod { continue }
          Self.unindex(old, in: &state)
          touched.formUnion(old.ips)
        }
        state.pods[pod.key] = pod
        for ip in pod.ips { state.byIP[ip, default: []].append(pod.key) }
        touched.formUnion(pod.ips)
        changed.append(pod)
      }
      if markSynced { state.synced = true }
      var wake: [Waiter] = []
      for ip in touched {
        if let waiting = state.waiters.removeValue(forKey: ip) { wake.append(contentsOf: waiting) }
      }
      return wake
    }
    for waiter in wake { waiter.continuation.resume() }
    if !changed.isEmpty || !removed.isEmpty {
      for observer in observers.withLock({ $0 }) { observer(changed, removed) }
    }
  }

  private static func unindex(_ pod: PodRecord, in state: inout State) {
    for ip in pod.ips {
      guard var keys = state.byIP[ip] else { continue }
      keys.removeAll { $0 == pod.key }
      state.byIP[ip] = keys.isEmpty ? nil : keys
    }
  }

  private static func intern(_ text: String, in state: inout State) -> String {
    if let existing = state.strings.firstIndex(of: text) { return state.strings[existing] }
    state.strings.insert(text)
    return text
  }

  // MARK: The rule

  private static func resolve(_ ip: String, in state: State) -> PodLookupResult {
    guard state.synced else { return .notReady }
    let claimants = (state.byIP[ip] ?? []).compactMap { state.pods[$0] }
    let live = claimants.filter { !$0.isCompleted }
    let eligible = live.filter { !$0.isTerminating && !$0.hostNetwork }
    switch eligible.count {
    case 1:
      return .found(eligible[0])
    case 0:
      if let host = live.first(where: { $0.hostNetwork && !$0.isTerminating }) { return .hostNetwork(host) }
      return .notFound
    default:
      return .multiple(eligible.sorted { $0.key < $1.key })
    }
  }

  // MARK: Waiting

  private enum WaitOutcome {
    case changed
    case timedOut
    case resolved(PodLookupResult)
  }

  /// Registers for the next change of `ip` (atomically with a re-check) and waits until then or
  /// the deadline.
  private func waitForChange(ip: String, deadline: ContinuousClock.Instant) async -> WaitOutcome {
    let id: UInt64 = state.withLock { state in
      state.nextWaiterID += 1
      return state.nextWaiterID
    }
    return await withTaskGroup(of: WaitOutcome.self) { group in
      group.addTask { [self] in
        await withTaskCancellationHandler {
          await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resolvedNow: Bool = state.withLock { state in
              // Re-check under the lock: a change between the caller's lookup and now must not be missed.
              if Self.resolve(ip, in: state).isDefinitive || Task.isCancelled { return true }
              state.waiters[ip, default: []].append(Waiter(id: id, continuation: continuation))
              return false
            }
            if resolvedNow { continuation.resume() }
          }
          return .changed
        } onCancel: { [self] in
          let waiter: Waiter? = state.withLock { state in
            guard var list = state.waiters[ip], let index = list.firstIndex(where: { $0.id == id }) else { return nil }
            let waiter = list.remove(at: index)
            state.waiters[ip] = list.isEmpty ? nil : list
            return waiter
          }
          waiter?.continuation.resume()
        }
      }
      group.addTask {
        try? await Task.sleep(until: deadline, clock: .continuous)
        return .timedOut
      }
      let first = await group.next() ?? .timedOut
      group.cancelAll()
      return first
    }
  }
}
