import KiamShared
import Synchronization

/// What the agent knows per pod IP: the pod's identity (role annotation, UID) and credentials per
/// role, so warm requests are answered from memory.
///
/// ## Identity
/// An IP may be reused by a new pod. A new pod always arrives on a new TCP connection (from its
/// own network namespace), so:
/// - once a request on a connection was checked, the connection's later requests come from the
///   same pod (trusted for up to 5 minutes after the server last confirmed the IP's pod). The
///   handler keeps the checked pod in the connection's context (``PodIdentity/connectionKey``);
///   a request that checked nothing (an IMDSv2 token) does not make the connection trusted;
/// - the first request on a connection is trusted only if the node's neighbor entry for the IP
///   (MAC address and interface) is the one seen when the server confirmed the pod: a new pod
///   brings a new MAC and veth. Where the node has no neighbor entry at all (loopback callers,
///   IPv6, layer-3 CNIs), only a confirmation younger than `identityMaxAge` (1 s) counts;
/// - anything else asks the server (`GetPodRole`) first. If the server still names the pod the
///   agent knew (same UID) although the link changed, the server has not yet seen the new pod
///   (a lagging watch): the agent refuses to answer until it has, for at most 30 s.
/// During a server outage, cached answers are only given while the neighbor entry still matches,
/// or where no neighbor information exists at all.
final class PodCredentialCache: Sendable {
  struct Entry: Sendable {
    var identity: PodIdentity
    /// Monotonic seconds of the last confirmation by the server.
    var serverConfirmedAt: Double
    /// Monotonic seconds of the last confirmation by the server or by an unchanged link.
    var confirmedAt: Double
    var link: String?
    var credentials: [String: CachedCredentials] = [:]
    var lastUsed: Double
    /// Set while the server names the previous pod for a changed link.
    var conflictSince: Double?

    /// Whether a request on a connection that checked `connectionPod` earlier comes from this
    /// entry's pod: the same pod, confirmed by the server within `trust` seconds, no conflict.
    func trusts(connectionPod: String?, now: Double, trust: Double) -> Bool {
      conflictSince == nil && connectionPod == identity.connectionKey && now - serverConfirmedAt < trust
    }

    /// The credentials for `role` while they have enough lifetime left to be served.
    func servable(role: String, wallNow: Double) -> CachedCredentials? {
      guard let cached = credentials[role], cached.remaining(now: wallNow) >= cached.serveFloor else { return nil }
      return cached
    }
  }

  /// The outcome of a server confirmation.
  enum Confirmation: Equatable {
    case accepted
    /// The link changed but the server still names the same pod: wait for the server.
    case conflict
  }

  let entries = Mutex<[String: Entry]>([:])
  /// Bumped (under the lock) by every change that can change an answer; see ``WarmMemo``.
  let generation = Atomic<UInt64>(0)
  private let neighbors: NeighborTable
  /// Asked when memory cannot answer (``answer(_:ip:connectionPod:deadline:)``).
  let source: any PodCredentialSource
  /// What credentials' expiry is compared with.
  let clock: WallClock
  let lookups = IdentityLookups()
  let identityMaxAge: Double
  let connectionTrust: Double
  let conflictLimit: Double
  let evictAfter: Double
  /// How often a connection answering from its ``WarmMemo`` marks the entry as used (eviction
  /// happens after hours, so a minute's precision is plenty).
  let touchInterval: Double

  init(
    source: any PodCredentialSource, clock: WallClock = .system, neighbors: NeighborTable = NeighborTable(),
    identityMaxAge: Duration = .seconds(1),
    connectionTrust: Duration = .seconds(300), conflictLimit: Duration = .seconds(30),
    evictAfter: Duration = .seconds(7200),
    touchInterval: Duration = .seconds(60)
  ) {
    self.source = source
    self.clock = clock
    self.neighbors = neighbors
    self.identityMaxAge = identityMaxAge.seconds
    self.connectionTrust = connectionTrust.seconds
    self.conflictLimit = conflictLimit.seconds
    self.evictAfter = evictAfter.seconds
    self.touchInterval = touchInterval.seconds
  }

  /// Monotonic seconds.
  static func monotonic() -> Double { ContinuousClock.now.timeIntervalSinceBoot }

  /// The identity of `ip` if it can be trusted without asking the server.
  /// - Parameter connectionPod: The pod checked earlier on the request's connection
  ///   (``PodIdentity/connectionKey``), if any.
  func trustedIdentity(ip: String, connectionPod: String? = nil) -> PodIdentity? {
    let now = Self.monotonic()
    let entry: Entry? = entries.withLock { entries in
      guard let index = entries.index(forKey: ip) else { return nil }
      entries.values[index].lastUsed = now
      return entries.values[index]
    }
    guard let entry, entry.conflictSince == nil else { return nil }
    if entry.trusts(connectionPod: connectionPod, now: now, trust: connectionTrust) { return entry.identity }
    // A new connection: is it still the same pod?
    guard now - entry.serverConfirmedAt < connectionTrust else { return nil }
    let current = neighbors.link(for: ip)
    switch (entry.link, current) {
    case (let known?, let current?) where known == current:
      entries.withLock { $0[ip]?.confirmedAt = now }
      return entry.identity
    case (nil, nil):
      return now - entry.confirmedAt < identityMaxAge ? entry.identity : nil
    default:
      return nil
    }
  }

  /// Changes entries in a way that can change an answer: connections' ``WarmMemo``s become stale.
  func change<Result>(_ body: (inout [String: Entry]) -> Result) -> Result {
    entries.withLock { entries in
      defer { generation.add(1, ordering: .releasing) }
      return body(&entries)
    }
  }

  /// Credentials for an outage: still valid for a minute and the caller not shown to be a new pod.
  func outageCredentials(ip: String, role: String, wallNow: Double) -> CachedCredentials? {
    let entry = entries.withLock { $0[ip] }
    guard let entry, entry.conflictSince == nil, let cached = entry.credentials[role],
      cached.remaining(now: wallNow) > 60
    else { return nil }
    let current = neighbors.link(for: ip)
    if let known = entry.link, let current, known != current { return nil }
    if entry.link != nil && current == nil { return nil }
    return cached
  }

  /// The last identity of `ip` for a server outage, unless the caller is shown to be a new pod.
  func outageIdentity(ip: String) -> PodIdentity? {
    guard let entry = entries.withLock({ $0[ip] }), entry.conflictSince == nil else { return nil }
    let current = neighbors.link(for: ip)
    if let known = entry.link, known != current { return nil }
    return entry.identity
  }

  /// The server named `identity` for `ip`.
  @discardableResult
  func confirm(ip: String, identity: PodIdentity) -> Confirmation {
    let now = Self.monotonic()
    let link = neighbors.link(for: ip)
    return change { entries -> Confirmation in
      if var entry = entries[ip], Self.samePod(entry.identity, identity) {
        if !identity.uid.isEmpty, let known = entry.link, let link, known != link {
          // The link changed but the server names the same pod: it has not seen the new pod yet.
          let since = entry.conflictSince ?? now
          if now - since < conflictLimit {
            entry.conflictSince = since
            entries[ip] = entry
            return .conflict
          }
        }
        entry.identity = identity
        entry.serverConfirmedAt = now
        entry.confirmedAt = now
        entry.link = link
        entry.lastUsed = now
        entry.conflictSince = nil
        entries[ip] = entry
      } else {
        entries[ip] = Entry(identity: identity, serverConfirmedAt: now, confirmedAt: now, link: link, lastUsed: now)
      }
      return .accepted
    }
  }

  /// Stores credentials the server issued for `ip` (whose pod UID it named).
  func store(ip: String, role: String, credentials: CachedCredentials, podUID: String) {
    let now = Self.monotonic()
    let link = neighbors.link(for: ip)
    change { entries in
      var entry =
        entries[ip]
        ?? Entry(
          identity: PodIdentity(role: role, uid: podUID), serverConfirmedAt: now, confirmedAt: now, link: link,
          lastUsed: now)
      if !podUID.isEmpty, !entry.identity.uid.isEmpty, entry.identity.uid != podUID {
        // A different pod: forget the previous one's credentials.
        entry = Entry(
          identity: PodIdentity(role: role, uid: podUID), serverConfirmedAt: now, confirmedAt: now, link: link,
          lastUsed: now)
      }
      guard entry.conflictSince == nil else { return }
      if !podUID.isEmpty { entry.identity.uid = podUID }
      entry.credentials[role] = credentials
      entry.serverConfirmedAt = now
      entry.confirmedAt = now
      entry.link = link
      entry.lastUsed = now
      entries[ip] = entry
    }
  }

  /// Forgets `ip` (e.g. the server no longer knows its pod).
  func forget(ip: String) {
    _ = change { $0.removeValue(forKey: ip) }
  }

  /// Credentials due for a background refresh (and marks the attempt).
  func refreshCandidates(wallNow: Double) -> [(ip: String, role: String)] {
    let now = Self.monotonic()
    return entries.withLock { entries in
      var due: [(String, String)] = []
      for (ip, entry) in entries where now - entry.lastUsed < evictAfter {
        for (role, cached) in entry.credentials
        where cached.remaining(now: wallNow) < cached.refreshBelow && wallNow - cached.lastRefreshAttempt >= 30 {
          entries[ip]!.credentials[role]!.lastRefreshAttempt = wallNow
          due.append((ip, role))
        }
      }
      return due
    }
  }

  /// Drops entries unused for `evictAfter` and credentials that expired.
  func evict(wallNow: Double) {
    let now = Self.monotonic()
    change { entries in
      entries = entries.filter { now - $0.value.lastUsed < evictAfter }
      for ip in entries.keys {
        entries[ip]!.credentials = entries[ip]!.credentials.filter { $0.value.remaining(now: wallNow) > 0 }
      }
    }
  }

  var count: Int { entries.withLock { $0.count } }
  func entry(_ ip: String) -> Entry? { entries.withLock { $0[ip] } }

  private static func samePod(_ a: PodIdentity, _ b: PodIdentity) -> Bool {
    if !a.uid.isEmpty && !b.uid.isEmpty { return a.uid == b.uid }
    return a.role == b.role
  }
}

extension ContinuousClock.Instant {
  /// Seconds since an arbitrary fixed point (monotonic), as a Double.
  var timeIntervalSinceBoot: Double {
    let (seconds, attoseconds) = (self - ContinuousClock.Instant.bootReference).components
    return Double(seconds) + Double(attoseconds) / 1e18
  }

  static let bootReference = ContinuousClock.now
}
