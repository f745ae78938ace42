import KiamShared

/// Lifetimes and STS protection limits of the ``CredentialsCache``.
public struct CredentialsCacheSettings: Sendable {
  /// Served credentials keep at least this much validity (`--min-credential-lifetime`).
  public var minimumLifetime: Duration
  /// Extra margin: refresh starts when `minimumLifetime + refreshMargin` remain (`--session-refresh`).
  public var refreshMargin: Duration
  /// At most this many STS calls at once (`--fetchers`).
  public var maxConcurrentFetches: Int
  /// Token bucket: sustained STS calls per second and burst size.
  public var rateLimit: Double
  public var burst: Int
  /// How long a non-transient failure (AccessDenied, …) is answered from memory.
  public var deniedBackoff: Duration
  /// First and longest delay between retries of transient failures (throttling, 5xx).
  public var transientBackoffInitial: Duration
  public var transientBackoffMaximum: Duration
  /// Identities no pod uses are forgotten after this long.
  public var forgetAfter: Duration

  public init(
    minimumLifetime: Duration = .seconds(1800),
    refreshMargin: Duration = .seconds(300), maxConcurrentFetches: Int = 8, rateLimit: Double = 100, burst: Int = 1000,
    deniedBackoff: Duration = .seconds(60), transientBackoffInitial: Duration = .seconds(1),
    transientBackoffMaximum: Duration = .seconds(60), forgetAfter: Duration = .seconds(300)
  ) {
    self.minimumLifetime = minimumLifetime
    self.refreshMargin = refreshMargin
    self.maxConcurrentFetches = maxConcurrentFetches
    self.rateLimit = rateLimit
    self.burst = burst
    self.deniedBackoff = deniedBackoff
    self.transientBackoffInitial = transientBackoffInitial
    self.transientBackoffMaximum = transientBackoffMaximum
    self.forgetAfter = forgetAfter
  }

  /// Below this, credentials are not served even while STS fails (they would expire in the SDK's hands).
  var degradedFloor: Double { min(60, minimumLifetime.seconds / 4) }
}
