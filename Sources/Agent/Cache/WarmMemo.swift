/// A keep-alive connection's copy of its last warm answer from ``PodCredentialCache``.
///
/// The connection answers its next requests from this copy, without taking the cache's lock,
/// while the cache's generation is still ``generation`` (nothing that decides an answer has
/// changed since: no confirmation, conflict, new credentials, eviction or forgotten pod) and the
/// same rules still hold (the connection's pod, the server's confirmation within the trust
/// window, enough lifetime left).
final class WarmMemo: Sendable {
  let ip: String
  let role: String
  /// The cache's generation when the copy was made.
  let generation: UInt64
  let identity: PodIdentity
  let credentials: CachedCredentials
  /// Monotonic seconds of the server's last confirmation of the pod.
  let serverConfirmedAt: Double
  /// Monotonic seconds when the copy last marked the cache entry as used (for eviction).
  let touchedAt: Double

  init(
    ip: String, role: String, generation: UInt64, identity: PodIdentity, credentials: CachedCredentials,
    serverConfirmedAt: Double, touchedAt: Double
  ) {
    self.ip = ip
    self.role = role
    self.generation = generation
    self.identity = identity
    self.credentials = credentials
    self.serverConfirmedAt = serverConfirmedAt
    self.touchedAt = touchedAt
  }

  /// The same copy, marked as used at `now`.
  func touched(_ now: Double) -> WarmMemo {
    WarmMemo(
      ip: ip, role: role, generation: generation, identity: identity, credentials: credentials,
      serverConfirmedAt: serverConfirmedAt, touchedAt: now)
  }
}
