import KiamShared
import Synchronization

/// The warm path: a request from a pod the cache already trusts is answered on the event loop,
/// with no await and no server call. A keep-alive connection whose pod was checked before keeps a
/// ``WarmMemo`` and is answered from it without the cache's lock while nothing has changed.
extension PodCredentialCache {
  /// Credentials to serve for `ip` and `role` without asking the server.
  func warmCredentials(ip: String, role: String, wallNow: Double, connectionPod: String? = nil) -> (
    identity: PodIdentity, credentials: CachedCredentials
  )? {
    var memo: WarmMemo?
    return warmCredentials(ip: ip, role: role, wallNow: wallNow, connectionPod: connectionPod, memo: &memo)
  }

  /// Credentials to serve for `ip` and `role` without asking the server, for a connection that
  /// keeps `memo` (see ``WarmMemo``): answered from the memo without the lock while it is
  /// current, and the memo made or renewed when the connection's pod was checked before.
  func warmCredentials(ip: String, role: String, wallNow: Double, connectionPod: String?, memo: inout WarmMemo?) -> (
    identity: PodIdentity, credentials: CachedCredentials
  )? {
    if let connectionPod {
      let now = Self.monotonic()
      if let known = memo, known.generation == generation.load(ordering: .acquiring), known.ip == ip,
        known.role == role,
        known.identity.connectionKey == connectionPod, now - known.serverConfirmedAt < connectionTrust,
        known.credentials.remaining(now: wallNow) >= known.credentials.serveFloor
      {
        if now - known.touchedAt >= touchInterval {
          entries.withLock { $0[ip]?.lastUsed = now }
          memo = known.touched(now)
        }
        return (known.identity, known.credentials)
      }
      if let made = connectionCredentials(ip: ip, role: role, wallNow: wallNow, connectionPod: connectionPod, now: now)
      {
        memo = made
        return (made.identity, made.credentials)
      }
    }
    guard let identity = trustedIdentity(ip: ip, connectionPod: connectionPod) else { return nil }
    return entries.withLock { entries in
      guard let entry = entries[ip], entry.identity == identity,
        let cached = entry.servable(role: role, wallNow: wallNow)
      else { return nil }
      return (identity, cached)
    }
  }

  /// Credentials held for `ip` and `role` when the entry's pod is `pod` (a ``PodIdentity/connectionKey``)
  /// as the server confirmed it within the trust window: one lock, no neighbour lookup.
  func heldCredentials(ip: String, role: String, wallNow: Double, pod: String) -> CachedCredentials? {
    connectionCredentials(ip: ip, role: role, wallNow: wallNow, connectionPod: pod, now: Self.monotonic())?.credentials
  }

  /// The warm path of a keep-alive connection whose pod was checked before: the same answer as
  /// ``trustedIdentity(ip:connectionPod:)`` followed by the credentials lookup, under one lock
  /// and without copying the entry, as a memo for the connection's next requests. Nil when
  /// anything else applies (the caller then takes the general path).
  private func connectionCredentials(ip: String, role: String, wallNow: Double, connectionPod: String, now: Double)
    -> WarmMemo?
  {
    entries.withLock { entries in
      guard let index = entries.index(forKey: ip) else { return nil }
      let entry = entries.values[index]
      guard entry.trusts(connectionPod: connectionPod, now: now, trust: connectionTrust),
        let cached = entry.servable(role: role, wallNow: wallNow)
      else { return nil }
      entries.values[index].lastUsed = now
      // Every change that could decide an answer bumps the generation under this lock.
      return WarmMemo(
        ip: ip, role: role, generation: generation.load(ordering: .relaxed), identity: entry.identity,
        credentials: cached,
        serverConfirmedAt: entry.serverConfirmedAt, touchedAt: now)
    }
  }

}
