import KiamShared
import Synchronization

/// What the agent knows per pod IP: the pod's identity (role annotation, UID) and credentials per
/// role, so warm requests are answered from memory.
///
/// ## Identity
/// An IP may be reused by a new pod. The agent answers from memory only while it is sure the
/// caller is still the pod it learned about:
/// - within `identityMaxAge` (1 s) of the server confirming the IP's pod, or
/// - while the node's neighbor entry for the IP (MAC and interface) is the one seen at
///   confirmation: a new pod brings a new MAC and veth.
/// Otherwise the next request asks the server (`GetPodRole`) first; a different pod UID drops
/// everything cached for the IP. During a server outage, credentials are only served when the
/// neighbor entry still matches, or where no neighbor information exists at all.
final class PodCredentialCache: Sendable {
  struct Entry: Sendable {
    var identity: PodIdentity
    /// Monotonic seconds of the last confirmation by the server.
    var confirmedAt: Double
    var link: String?
    var credentials: [String: CachedCredentials] = [:]
    var lastUsed: Double
  }

  private let entries = Mutex<[String: Entry]>([:])
  private let neighbors: NeighborTable
  let identityMaxAge: Double
  let evictAfter: Double

  init(neighbors: NeighborTable = NeighborTable(), identityMaxAge: Duration = .seconds(1), evictAfter: Duration = .seconds(7200)) {
    self.neighbors = neighbors
    self.identityMaxAge = identityMaxAge.seconds
    self.evictAfter = evictAfter.seconds
  }

  /// Monotonic seconds.
  static func monotonic() -> Double { ContinuousClock.now.timeIntervalSinceBoot }

  /// The identity of `ip` if it can be trusted without asking the server.
  func trustedIdentity(ip: String) -> PodIdentity? {
    let now = Self.monotonic()
    let entry: Entry? = entries.withLock { entries in
      guard var entry = entries[ip] else { return nil }
      entry.lastUsed = now
      entries[ip] = entry
      return entry
    }
    guard let entry else { return nil }
    if now - entry.confirmedAt < identityMaxAge { return entry.identity }
    // Older confirmation: still the same pod if its link is unchanged.
    if let known = entry.link, let current = neighbors.link(for: ip), known == current {
      entries.withLock { $0[ip]?.confirmedAt = now }
      return entry.identity
    }
    return nil
  }

  /// Credentials to serve for `ip` and `role` without asking the server.
  func warmCredentials(ip: String, role: String, wallNow: Double) -> CachedCredentials? {
    guard trustedIdentity(ip: ip) != nil else { return nil }
    return entries.withLock { entries -> CachedCredentials? in
      guard let cached = entries[ip]?.credentials[role], cached.remaining(now: wallNow) >= cached.serveFloor else { return nil }
      return cached
    }
  }

  /// Credentials for an outage: still valid for a minute and the caller not shown to be a new pod.
  func outageCredentials(ip: String, role: String, wallNow: Double) -> CachedCredentials? {
    let entry = entries.withLock { $0[ip] }
    guard let entry, let cached = entry.credentials[role], cached.remaining(now: wallNow) > 60 else { return nil }
    let current = neighbors.link(for: ip)
    if let known = entry.link, let current, known != current { return nil }
    if entry.link != nil && current == nil { return nil }
    return cached
  }

  /// The last identity of `ip` for a server outage, unless the caller is shown to be a new pod.
  func outageIdentity(ip: String) -> PodIdentity? {
    guard let entry = entries.withLock({ $0[ip] }) else { return nil }
    let current = neighbors.link(for: ip)
    if let known = entry.link, known != current { return nil }
    return entry.identity
  }

  /// The server confirmed `identity` for `ip`.
  func confirm(ip: String, identity: PodIdentity) {
    let now = Self.monotonic()
    let link = neighbors.link(for: ip)
    entries.withLock { entries in
      if var entry = entries[ip], Self.samePod(entry.identity, identity) {
        entry.identity = identity
        entry.confirmedAt = now
        entry.link = link
        entry.lastUsed = now
        entries[ip] = entry
      } else {
        entries[ip] = Entry(identity: identity, confirmedAt: now, link: link, lastUsed: now)
      }
    }
  }

  /// Stores credentials the server issued for `ip` (whose pod UID it named).
  func store(ip: String, role: String, credentials: CachedCredentials, podUID: String) {
    let now = Self.monotonic()
    let link = neighbors.link(for: ip)
    entries.withLock { entries in
      var entry = entries[ip] ?? Entry(identity: PodIdentity(role: role, uid: podUID), confirmedAt: now, link: link, lastUsed: now)
      if !podUID.isEmpty, !entry.identity.uid.isEmpty, entry.identity.uid != podUID {
        // A different pod: forget the previous one's credentials.
        entry = Entry(identity: PodIdentity(role: role, uid: podUID), confirmedAt: now, link: link, lastUsed: now)
      }
      if !podUID.isEmpty { entry.identity.uid = podUID }
      entry.credentials[role] = credentials
      entry.confirmedAt = now
      entry.link = link
      entry.lastUsed = now
      entries[ip] = entry
    }
  }

  /// Forgets `ip` (e.g. the server no longer knows its pod).
  func forget(ip: String) {
    _ = entries.withLock { $0.removeValue(forKey: ip) }
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
    entries.withLock { entries in
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
