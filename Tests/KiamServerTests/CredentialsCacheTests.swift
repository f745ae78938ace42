import Foundation
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import KiamServer

/// The credentials cache through the real STS client against moto with injected faults.
@Suite(.serialized, .enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
struct CredentialsCacheTests {
  let logger = Logger(label: "test")
  let key = AWSAccessKey(accessKeyID: "AKIACACHETEST", secretAccessKey: "secret")

  func identity(_ name: String) -> RoleIdentity {
    RoleIdentity(role: ResolvedRole(name: name, arn: "arn:aws:iam::123456789012:role/\(name)"))
  }

  func withCache<T: Sendable>(
    _ lab: STSLab, settings: CredentialsCacheSettings, sessionDuration: Duration = .seconds(3600), attempts: Int = 3,
    metrics: KiamMetrics = KiamMetrics(),
    _ body: @Sendable (CredentialsCache) async throws -> T
  ) async throws -> T {
    try await withAWSHTTP { http in
      let sts = STSClient(
        endpoint: STSEndpoint.resolve(region: nil, override: lab.endpoint), http: http, logger: logger,
        maxAttempts: attempts)
      let assumer = STSRoleAssumer(
        sts: sts, source: StaticCredentialProvider(name: "test", key: key), sessionDuration: sessionDuration,
        defaultSession: "kiam")
      let cache = CredentialsCache(assumer: assumer, settings: settings, metrics: metrics, logger: logger)
      return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
          try await cache.run()
          return nil
        }
        let result = try await body(cache)
        group.cancelAll()
        return result
      }
    }
  }

  @Test func thousandConcurrentRequestsMakeOneSTSCall() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["latency_ms": "300"])
    let metrics = KiamMetrics()
    let keys = try await withCache(lab, settings: .init(), metrics: metrics) { cache in
      try await withThrowingTaskGroup(of: String.self) { group in
        for _ in 0..<1000 { group.addTask { try await cache.credentials(for: identity("shared")).accessKeyID } }
        var keys = Set<String>()
        for try await key in group { keys.insert(key) }
        return keys
      }
    }
    #expect(keys.count == 1)
    #expect(try await lab.stats().calls("arn:aws:iam::123456789012:role/shared") == 1)
    let page = try PrometheusText(metrics.registry.emitToString())
    #expect(page.value("kiam_sts_cache_miss_total") == 1000)
    #expect(page.value("kiam_sts_assumerole_timing_seconds_count") == 1)
  }

  @Test func cancelledFirstCallerDoesNotFailTheOthers() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["latency_ms": "800"])
    try await withCache(lab, settings: .init()) { cache in
      let first = Task { try await cache.credentials(for: identity("app")) }
      try await Task.sleep(for: .milliseconds(100))
      async let second = cache.credentials(for: identity("app"))
      try await Task.sleep(for: .milliseconds(100))
      first.cancel()  // the pod's SDK gave up
      await #expect(throws: CredentialsError.self) { _ = try await first.value }
      let credentials = try await second
      #expect(credentials.accessKeyID.hasPrefix("ASIA"))
      // Cached for the next caller.
      #expect(try await cache.credentials(for: identity("app")) == credentials)
    }
    #expect(try await lab.stats().calls("arn:aws:iam::123456789012:role/app") == 1)
  }

  @Test func refreshHappensBeforeTheLifetimeFloor() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    // Compressed time: 24 s sessions, 8 s floor, 4 s margin (refresh due 12 s before expiry).
    let settings = CredentialsCacheSettings(minimumLifetime: .seconds(8), refreshMargin: .seconds(4))
    let (lowest, keys) = try await withCache(lab, settings: settings, sessionDuration: .seconds(24)) { cache in
      cache.retain(identity("refreshed"))
      var lowest = Double.infinity
      var keys = Set<String>()
      let clock = ContinuousClock()
      let end = clock.now + .seconds(20)
      while clock.now < end {
        let credentials = try await cache.credentials(for: identity("refreshed"))
        lowest = min(lowest, Double(credentials.expiration) - WallClock.system.nowPrecise())
        keys.insert(credentials.accessKeyID)
        try await Task.sleep(for: .milliseconds(200))
      }
      return (lowest, keys)
    }
    // Expirations are whole seconds, so allow one second of rounding.
    #expect(lowest >= 8 - 1, "served credentials with \(lowest) s left")
    #expect(keys.count >= 2, "no refresh happened")
    #expect(try await lab.stats().calls("arn:aws:iam::123456789012:role/refreshed") >= 2)
  }

  @Test func stsOutageKeepsServingValidCredentialsAndRecovers() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    // Compressed time: 30 s sessions (one hour), STS down for 22 s (about 44 minutes).
    let settings = CredentialsCacheSettings(
      minimumLifetime: .seconds(10), refreshMargin: .seconds(4),
      transientBackoffInitial: .milliseconds(500), transientBackoffMaximum: .seconds(4))
    try await withCache(lab, settings: settings, sessionDuration: .seconds(30), attempts: 1) { cache in
      cache.retain(identity("steady"))
      let first = try await cache.credentials(for: identity("steady"))
      try await lab.setFaults(["throttle_rate": "1"])
      let clock = ContinuousClock()
      let outageEnd = clock.now + .seconds(22)
      while clock.now < outageEnd {
        let credentials = try await cache.credentials(for: identity("steady"))
        #expect(Double(credentials.expiration) - WallClock.system.nowPrecise() > 0, "served expired credentials")
        try await Task.sleep(for: .milliseconds(250))
      }
      let throttled = try await lab.stats().throttled
      #expect(throttled >= 2, "refresh was not attempted during the outage")
      #expect(throttled <= 20, "STS was hammered: \(throttled) calls in 22 s")
      try await lab.clearFaults()
      // Recovers by itself: fresh credentials with the full floor.
      #expect(
        await eventually(timeout: .seconds(10)) {
          guard let credentials = try? await cache.credentials(for: identity("steady")) else { return false }
          return credentials.accessKeyID != first.accessKeyID
            && Double(credentials.expiration) - WallClock.system.nowPrecise() >= 10 - 1
        })
    }
  }

  @Test func accessDeniedIsAnsweredFromMemoryForAWhile() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["deny_role": "forbidden"])
    try await withCache(lab, settings: .init()) { cache in
      for _ in 0..<5 {
        do {
          _ = try await cache.credentials(for: identity("forbidden-role"))
          Issue.record("expected AccessDenied")
        } catch let error as CredentialsError {
          #expect(error.code == "AccessDenied")
          #expect(!error.isTransient)
        }
      }
    }
    #expect(try await lab.stats().calls("arn:aws:iam::123456789012:role/forbidden-role") == 1)
  }

  @Test func throttlingBacksOffMoreAndMore() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["throttle_rate": "1"])
    let settings = CredentialsCacheSettings(
      transientBackoffInitial: .milliseconds(250), transientBackoffMaximum: .seconds(8))
    try await withCache(lab, settings: settings, sessionDuration: .seconds(30), attempts: 1) { cache in
      cache.retain(identity("busy"))
      try await Task.sleep(for: .seconds(6))
    }
    // Without backoff a prefetch loop would call hundreds of times; 250 ms doubling gives ~5.
    let calls = try await lab.stats().calls("arn:aws:iam::123456789012:role/busy")
    #expect(calls >= 2 && calls <= 9, "\(calls) calls")
  }

  @Test func concurrencyAndRateLimitsProtectSTS() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["latency_ms": "100"])
    let settings = CredentialsCacheSettings(maxConcurrentFetches: 4, rateLimit: 20, burst: 10)
    let clock = ContinuousClock()
    let started = clock.now
    try await withCache(lab, settings: settings) { cache in
      for i in 0..<40 { cache.retain(identity("role-\(i)")) }
      #expect(await eventually(timeout: .seconds(20)) { cache.identities.allSatisfy { cache.cached($0) != nil } })
    }
    let stats = try await lab.stats()
    #expect(stats.requests == 40)
    #expect(stats.max_concurrent <= 4)
    // 10 at once, then 20 per second: at least 1.5 s for the other 30.
    #expect(clock.now - started >= .milliseconds(1400))
  }

  @Test func prefetchOnlyPermittedRolesAndForgetUnusedOnes() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let settings = CredentialsCacheSettings(forgetAfter: .seconds(1))
    try await withCache(lab, settings: settings) { cache in
      let state = ServerState(pods: PodCache(), namespaces: NamespaceCache(strict: true))
      state.setResolver(RoleARNResolver(baseARN: "arn:aws:iam::123456789012:role/"))
      let coordinator = PrefetchCoordinator(state: state, cache: cache)
      coordinator.attach()
      state.namespaces.replaceAll([("apps", "arn:aws:iam::123456789012:role/app-.*"), ("locked", nil)])
      state.pods.replaceAll([
        PodRecord(namespace: "apps", name: "a", ips: ["10.0.0.1"], role: "app-a"),
        PodRecord(namespace: "apps", name: "a2", ips: ["10.0.0.2"], role: "app-a"),
        PodRecord(namespace: "apps", name: "x", ips: ["10.0.0.3"], role: "not-permitted"),
        PodRecord(namespace: "locked", name: "b", ips: ["10.0.0.4"], role: "app-b"),
        PodRecord(namespace: "apps", name: "done", ips: ["10.0.0.5"], phase: .succeeded, role: "app-done"),
      ])
      #expect(await eventually { (try? await lab.stats().calls("arn:aws:iam::123456789012:role/app-a")) == 1 })
      try await Task.sleep(for: .milliseconds(500))
      let stats = try await lab.stats()
      #expect(stats.requests == 1, "only app-a may be prefetched: \(stats.assume_role)")
      // Permitting the namespace prefetches its pod's role.
      state.namespaces.upsert(name: "locked", permitted: ".*")
      #expect(await eventually { (try? await lab.stats().calls("arn:aws:iam::123456789012:role/app-b")) == 1 })
      // When no pod uses a role any more, it is forgotten.
      state.pods.delete(key: "apps/a")
      state.pods.delete(key: "apps/a2")
      let appA = RoleIdentity(role: ResolvedRole(name: "app-a", arn: "arn:aws:iam::123456789012:role/app-a"))
      #expect(await eventually(timeout: .seconds(5)) { !cache.identities.contains(appA) })
      #expect(cache.identities.contains { $0.role.name == "app-b" })
    }
  }
}
