import KiamShared
import Logging
import ServiceLifecycle

/// Refreshes cached credentials in the background before SDKs would consider them old, so warm
/// requests never wait for the server; keeps the old ones when the server is unreachable.
struct CredentialRefreshService: Service {
  let cache: PodCredentialCache
  let logger: Logger
  var interval: Duration = .seconds(1)
  var concurrency = 4

  func run() async throws {
    try? await cancelWhenGracefulShutdown { try await self.loop() }
  }

  private func loop() async throws {
    var sweeps = 0
    // Every `interval`, or at once when a manual clock moves (tests).
    let wake = WakeSignal()
    let clock = cache.clock
    clock.whenAdvanced { wake.signal() }
    do {
      while true {
        await wake.wait(timeout: interval)
        try Task.checkCancellation()
        let due = cache.refreshCandidates(wallNow: clock.nowPrecise())
        if !due.isEmpty { await refresh(due) }
        sweeps += 1
        if sweeps % 60 == 0 { cache.evict(wallNow: clock.nowPrecise()) }
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
            try await cache.refresh(ip: ip, role: role, timeout: .seconds(5))
          } catch {
            logger.warning(
              "cannot refresh credentials", metadata: ["pod.ip": "\(ip)", "role": "\(role)", "error": "\(error)"])
          }
        }
        return true
      }
      for _ in 0..<concurrency where next() {}
      for await _ in group { _ = next() }
    }
  }
}
