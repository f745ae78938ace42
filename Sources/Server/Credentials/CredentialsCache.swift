import KiamShared
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// Credentials per role identity, always ready before pods ask.
///
/// - **Single flight, never tied to a caller**: one STS call per identity however many callers;
///   calls run in this service's own task group, so a caller that gives up (an SDK's 1 s
///   timeout) only stops waiting, it never cancels the fetch others wait for.
/// - **Prefetch**: identities of live pods (after the namespace policy allowed them, see
///   ``PrefetchCoordinator``) are fetched before any request.
/// - **Proactive refresh from a scheduler**: each entry is due at
///   `expiry − (minimumLifetime + refreshMargin)`; the loop below wakes for the earliest due time,
///   so no refresh notification can be lost.
/// - **Pods never wait on a refresh**: still-valid credentials are served while a refresh runs or
///   while STS fails, down to a small floor.
/// - **STS protection**: a concurrency limit, a token bucket, priorities (a waiting pod first,
///   then prefetch, then refresh), a negative cache for denials and growing backoff for throttling.
/// - **Forgetting**: identities no live pod uses are dropped after `forgetAfter`.
final class CredentialsCache: CredentialsProvider, Service, Sendable {
  enum Priority: Int, Comparable {
    case demand = 0
    case prefetch = 1
    case refresh = 2
    static func < (a: Priority, b: Priority) -> Bool { a.rawValue < b.rawValue }
  }

  private typealias Waiter = CheckedContinuation<Result<AWSCredentials, CredentialsError>, Never>

  private struct Entry {
    var credentials: AWSCredentials?
    var fetching = false
    var queued: Priority?
    var waiters: [UInt64: Waiter] = [:]
    var failure: CredentialsError?
    var failures = 0
    var retryAt = 0.0
    var refreshAt = Double.infinity
    var users = 0
    var lastUsed = 0.0
  }

  private struct State {
    var entries: [RoleIdentity: Entry] = [:]
    var nextWaiter: UInt64 = 0
    var inFlight = 0
    var tokens: Double
    var tokensAt: ContinuousClock.Instant
    var stopped = false
  }

  private struct Job {
    let identity: RoleIdentity
    let priority: Priority
    let due: Double
  }

  private let assumer: any RoleAssumer
  private let settings: CredentialsCacheSettings
  /// What expiry and refresh times are compared with.
  private let clock: WallClock
  private let logger: Logger
  private let metrics: KiamMetrics
  private let state: Mutex<State>
  private let wake = WakeSignal()

  init(
    assumer: any RoleAssumer, settings: CredentialsCacheSettings, metrics: KiamMetrics, logger: Logger,
    clock: WallClock = .system
  ) {
    self.assumer = assumer
    self.settings = settings
    self.metrics = metrics
    self.logger = logger
    self.clock = clock
    self.state = Mutex(State(tokens: Double(settings.burst), tokensAt: .now))
    // A moved clock can make refreshes due: plan again.
    let wake = self.wake
    clock.whenAdvanced { wake.signal() }
  }

  // MARK: Asking

  func credentials(for identity: RoleIdentity) async throws -> AWSCredentials {
    // Fast path: no continuation, one lock.
    if case .ready(let credentials, let refreshQueued) = state.withLock({ decide(identity, in: &$0, register: nil) }) {
      metrics.stsCacheHit.increment()
      if refreshQueued { wake.signal() }
      return credentials
    }
    let id = state.withLock { state -> UInt64 in
      state.nextWaiter += 1
      return state.nextWaiter
    }
    let result: Result<AWSCredentials, CredentialsError> = await withTaskCancellationHandler {
      await withCheckedContinuation { (continuation: Waiter) in
        // Decide and register atomically, so a fetch finishing meanwhile cannot be missed.
        let decision = state.withLock { decide(identity, in: &$0, register: (id, continuation)) }
        switch decision {
        case .ready(let credentials, let refreshQueued):
          metrics.stsCacheHit.increment()
          if refreshQueued { wake.signal() }
          continuation.resume(returning: .success(credentials))
        case .failed(let error):
          metrics.stsCacheMiss.increment()
          continuation.resume(returning: .failure(error))
        case .waiting(let queuedDemand):
          metrics.stsCacheMiss.increment()
          if queuedDemand { wake.signal() }
        case .stopped:
          continuation.resume(
            returning: .failure(
              CredentialsError(code: "ShuttingDown", message: "server is stopping", isTransient: true)))
        }
      }
    } onCancel: {
      // The caller gave up: stop waiting, but leave the fetch running for everyone else.
      let waiter = state.withLock { $0.entries[identity]?.waiters.removeValue(forKey: id) }
      waiter?.resume(
        returning: .failure(CredentialsError(code: "RequestCanceled", message: "request canceled", isTransient: true)))
    }
    return try result.get()
  }

  private enum Decision {
    /// Credentials to serve; true when a refresh was queued (the scheduler must wake).
    case ready(AWSCredentials, Bool)
    case failed(CredentialsError)
    /// Registered; true when a demand fetch was queued (the scheduler must wake).
    case waiting(Bool)
    case stopped
  }

  /// The answer for `identity` now; with `register`, a caller that has to wait is registered.
  private func decide(_ identity: RoleIdentity, in state: inout State, register: (UInt64, Waiter)?) -> Decision {
    let now = clock.nowPrecise()
    var entry = state.entries[identity] ?? Entry()
    entry.lastUsed = now
    defer { state.entries[identity] = entry }
    if let current = entry.credentials {
      let remaining = Double(current.expiration) - now
      if remaining >= settings.minimumLifetime.seconds { return .ready(current, false) }
      if remaining > settings.degradedFloor {
        // Below the floor (refresh late or STS failing): serve what is still valid, refresh now.
        if !entry.fetching && entry.queued == nil && now >= entry.retryAt {
          entry.queued = .demand
          return .ready(current, true)
        }
        return .ready(current, false)
      }
    }
    if now < entry.retryAt, let failure = entry.failure { return .failed(failure) }
    guard let (id, continuation) = register else { return .waiting(false) }
    if state.stopped { return .stopped }
    entry.waiters[id] = continuation
    if entry.fetching { return .waiting(false) }
    entry.queued = .demand
    return .waiting(true)
  }

  // MARK: Which identities are in use (from the prefetch coordinator)

  /// A live pod uses `identity`: keep credentials ready for it.
  func retain(_ identity: RoleIdentity) {
    let needsFetch: Bool = state.withLock { state in
      var entry = state.entries[identity] ?? Entry()
      entry.users += 1
      entry.lastUsed = clock.nowPrecise()
      let needs = entry.credentials == nil && !entry.fetching && entry.queued == nil
      if needs { entry.queued = .prefetch }
      state.entries[identity] = entry
      return needs
    }
    if needsFetch { wake.signal() }
  }

  /// A pod stopped using `identity`.
  func release(_ identity: RoleIdentity) {
    let unused: Bool = state.withLock { state in
      guard var entry = state.entries[identity] else { return false }
      entry.users = max(0, entry.users - 1)
      entry.lastUsed = clock.nowPrecise()
      state.entries[identity] = entry
      return entry.users == 0
    }
    // The scheduler must plan the forgetting.
    if unused { wake.signal() }
  }

  /// Identities currently cached (for tests and metrics).
  var identities: [RoleIdentity] { state.withLock { Array($0.entries.keys) } }

  /// The credentials held for `identity` (for tests).
  func cached(_ identity: RoleIdentity) -> AWSCredentials? { state.withLock { $0.entries[identity]?.credentials } }

  // MARK: The scheduler

  func run() async throws {
    await withDiscardingTaskGroup { group in
      while !Task.isCancelled && !Task.isShuttingDownGracefully {
        let (jobs, nextWake) = plan()
        for job in jobs {
          group.addTask { await self.perform(job) }
        }
        await cancelWhenGracefulShutdownQuietly { await self.wake.wait(timeout: nextWake) }
      }
      group.cancelAll()
    }
    let waiters: [Waiter] = state.withLock { state in
      state.stopped = true
      var all: [Waiter] = []
      for key in state.entries.keys {
        all.append(contentsOf: state.entries[key]!.waiters.values)
        state.entries[key]!.waiters.removeAll()
      }
      return all
    }
    for waiter in waiters {
      waiter.resume(
        returning: .failure(CredentialsError(code: "ShuttingDown", message: "server is stopping", isTransient: true)))
    }
  }

  /// Picks the fetches to start now and how long to sleep before looking again.
  private func plan() -> ([Job], Duration?) {
    let now = clock.nowPrecise()
    return state.withLock { state in
      // Refill the token bucket.
      let instant = ContinuousClock.now
      let elapsed = (instant - state.tokensAt).seconds
      state.tokens = min(Double(settings.burst), state.tokens + elapsed * settings.rateLimit)
      state.tokensAt = instant
      var candidates: [Job] = []
      var nextDue = Double.infinity
      var forget: [RoleIdentity] = []
      for (identity, entry) in state.entries {
        if entry.fetching { continue }
        if entry.users == 0 && entry.waiters.isEmpty && entry.queued != .demand {
          let forgetAt = entry.lastUsed + settings.forgetAfter.seconds
          if now > forgetAt {
            forget.append(identity)
            continue
          }
          nextDue = min(nextDue, forgetAt)
        }
        if now < entry.retryAt {
          if entry.queued != nil || entry.users > 0 { nextDue = min(nextDue, entry.retryAt) }
          continue
        }
        if let queued = entry.queued {
          candidates.append(Job(identity: identity, priority: queued, due: now))
        } else if entry.users > 0 && entry.credentials == nil {
          candidates.append(Job(identity: identity, priority: .prefetch, due: now))
        } else if entry.users > 0 || !entry.waiters.isEmpty || now - entry.lastUsed < settings.forgetAfter.seconds {
          if entry.refreshAt <= now {
            candidates.append(Job(identity: identity, priority: .refresh, due: entry.refreshAt))
          } else {
            nextDue = min(nextDue, entry.refreshAt)
          }
        }
      }
      for identity in forget {
        state.entries.removeValue(forKey: identity)
        logger.debug("forgot unused role identity", metadata: ["identity": "\(identity)"])
      }
      candidates.sort { $0.priority == $1.priority ? $0.due < $1.due : $0.priority < $1.priority }
      var jobs: [Job] = []
      for job in candidates {
        guard state.inFlight < settings.maxConcurrentFetches else { break }
        guard state.tokens >= 1 else {
          nextDue = min(nextDue, now + (1 - state.tokens) / settings.rateLimit)
          break
        }
        state.tokens -= 1
        state.inFlight += 1
        state.entries[job.identity]!.fetching = true
        state.entries[job.identity]!.queued = nil
        jobs.append(job)
      }
      metrics.stsCacheSize.set(to: Double(state.entries.values.filter { $0.credentials != nil }.count))
      let sleep: Duration? = nextDue.isFinite ? .milliseconds(Int64(max(0, (nextDue - now) * 1000)) + 1) : nil
      return (jobs, sleep)
    }
  }

  private func perform(_ job: Job) async {
    let started = clock.nowPrecise()
    if job.priority == .refresh {
      stsMetric("refresh_lag", "seconds", "How late refreshes start after they are due")
        .recordNanoseconds(Int64(max(0, started - job.due) * 1e9))
    }
    metrics.stsAssumeRoleCurrent.increment()
    let callStarted = ContinuousClock.now
    let result: Result<AWSCredentials, CredentialsError>
    do {
      result = .success(try await assumer.assume(job.identity))
    } catch let error as CredentialsError {
      result = .failure(error)
    } catch {
      result = .failure(CredentialsError(code: "InternalError", message: KiamError.describe(error), isTransient: true))
    }
    metrics.stsAssumeRoleCurrent.decrement()
    metrics.stsAssumeRoleTiming.record(ContinuousClock.now - callStarted)
    let outcome: String
    switch result {
    case .success: outcome = "success"
    case .failure(let error):
      outcome = error.isTransient ? (STSError.throttlingCodes.contains(error.code) ? "throttled" : "error") : "denied"
    }
    stsCounter(
      "assumerole", "AssumeRole calls by outcome and reason", [("outcome", outcome), ("reason", "\(job.priority)")]
    ).increment()
    let now = clock.nowPrecise()
    let (waiters, answer): ([Waiter], Result<AWSCredentials, CredentialsError>) = state.withLock { state in
      state.inFlight -= 1
      guard var entry = state.entries[job.identity] else { return ([], result) }
      entry.fetching = false
      var answer = result
      switch result {
      case .success(let credentials):
        entry.credentials = credentials
        entry.failure = nil
        entry.failures = 0
        entry.retryAt = 0
        entry.refreshAt = refreshTime(for: credentials, now: now)
      case .failure(let error):
        metrics.stsIssuingErrors.increment()
        entry.failure = error
        entry.failures += 1
        entry.retryAt = now + backoff(for: error, failures: entry.failures)
        // Waiters still get credentials that are valid enough.
        if let current = entry.credentials, Double(current.expiration) - now > settings.degradedFloor {
          answer = .success(current)
        }
      }
      let waiters = Array(entry.waiters.values)
      entry.waiters.removeAll()
      state.entries[job.identity] = entry
      return (waiters, answer)
    }
    switch result {
    case .success(let credentials):
      logger.info(
        "fetched credentials",
        metadata: [
          "credentials.role": "\(job.identity.role.arn)", "credentials.access.key": "\(credentials.accessKeyID)",
          "credentials.expiration": "\(RFC3339.format(epochSeconds: credentials.expiration))",
          "credentials.external-id": "\(job.identity.maskedExternalID)", "reason": "\(job.priority)",
        ])
    case .failure(let error):
      logger.warning(
        "error fetching credentials",
        metadata: ["credentials.role": "\(job.identity.role.arn)", "error": "\(error)", "reason": "\(job.priority)"])
    }
    for waiter in waiters { waiter.resume(returning: answer) }
    wake.signal()
  }

  /// When to refresh: `minimumLifetime + refreshMargin` before expiry, a little earlier for
  /// some entries so refreshes of identities fetched together spread out.
  private func refreshTime(for credentials: AWSCredentials, now: Double) -> Double {
    let lead = settings.minimumLifetime.seconds + settings.refreshMargin.seconds
    let jitter = Double.random(in: 0...(settings.refreshMargin.seconds * 0.2))
    let due = Double(credentials.expiration) - lead - jitter
    // Credentials shorter than the lead (odd STS caps): refresh half-way instead of in a loop.
    // (Not a lower bound for the others: 1 h credentials with a 35 min lead are due after 25 min,
    // half-way would be 30 min, right at the floor, and a slow STS call then serves below it.)
    return due > now ? due : now + (Double(credentials.expiration) - now) / 2
  }

  private func backoff(for error: CredentialsError, failures: Int) -> Double {
    guard error.isTransient else { return settings.deniedBackoff.seconds }
    let base = settings.transientBackoffInitial.seconds * Double(1 << min(failures - 1, 16))
    let capped = min(base, settings.transientBackoffMaximum.seconds)
    return Double.random(in: (capped / 2)...capped)
  }

  private func stsCounter(_ name: String, _ help: String, _ labels: [(String, String)]) -> Counter {
    metrics.registry.makeCounter(
      descriptor: .init(namespace: "kiam", subsystem: "sts", metricName: name, unitName: "total", helpText: help),
      labels: labels)
  }

  private func stsMetric(_ name: String, _ unit: String, _ help: String) -> DurationHistogram {
    metrics.registry.makeDurationHistogram(
      descriptor: .init(namespace: "kiam", subsystem: "sts", metricName: name, unitName: unit, helpText: help),
      buckets: [.milliseconds(10), .milliseconds(100), .seconds(1), .seconds(10), .seconds(60), .seconds(300)])
  }
}

/// Runs `body`, ending it (quietly) when graceful shutdown starts.
func cancelWhenGracefulShutdownQuietly(_ body: @escaping @Sendable () async -> Void) async {
  await cancelWhenGracefulShutdown { await body() }
}
