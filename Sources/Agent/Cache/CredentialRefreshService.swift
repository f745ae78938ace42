import KiamShared
import Logging
import ServiceLifecycle

/// Refreshes cached credentials in the background before SDKs would consider them old, so warm
/// requests never wait for the server; keeps the old ones when the server is unreachable.
struct CredentialRefreshService: Service {
  let cache: PodCredentialCache
  let server: KiamServerClient
  let logger: Logger
  var interval: Duration = .seconds(1)
  var concurrency = 4

  func run() async throws {
    try? await cancelWhenGracefulShutdown { try await self.loop() }
  }

  private func loop() async throws {
    var sweeps = 0
    do {
      while true {
        try await Task.sleep(for: interval)
        let due = cache.refreshCandidates(wallNow: WallClock.nowPrecise())
        if !due.isEmpty { await refresh(due) }
        sweeps += 1
        if sweeps % 60 == 0 { cache.evict(wallNow: WallClock.nowPrecise()) }
      }
    }
  }

  private func refresh(_ due: [(ip: String, role: String)]) async {
    await withTaskGroup(of: Void.self) { group in
      var iterator = due.makeIterator()
      func next() -> Bool {
        guard let (ip, role) = iterator.next() else { return false }
        group.addTask {
          do {
            let issued = try await server.podCredentials(ip: ip, role: role, timeout: .seconds(5))
            cache.store(
              ip: ip, role: role, credentials: CachedCredentials(issued.credentials, roleARN: issued.roleARN, now: WallClock.nowPrecise()),
              podUID: issued.podUID)
          } catch let error as ServerCallError {
            if error.isPodNotFound { cache.forget(ip: ip) }
            logger.warning("cannot refresh credentials", metadata: ["pod.ip": "\(ip)", "role": "\(role)", "error": "\(error)"])
          } catch {
            logger.warning("cannot refresh credentials", metadata: ["pod.ip": "\(ip)", "role": "\(role)", "error": "\(error)"])
          }
        }
        return true
      }
      for _ in 0..<concurrency where next() {}
      for await _ in group { _ = next() }
    }
  }
}
