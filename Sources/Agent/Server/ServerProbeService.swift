import KiamShared
import Logging
import ServiceLifecycle

/// While ``ServerReachability`` says no server answers, asks the servers for their health every
/// `interval` (each call waits for a connection up to `timeout`) until one answers; pods' requests
/// are meanwhile answered from the cache without waiting. Logs a confirmed outage's start and end.
struct ServerProbeService: Service {
  let server: KiamServerClient
  let reachability: ServerReachability
  let logger: Logger
  var interval: Duration = .milliseconds(500)
  var timeout: Duration = .seconds(1)

  func run() async throws {
    try? await cancelWhenGracefulShutdown { try await self.loop() }
  }

  private func loop() async throws {
    while true {
      while !reachability.isUnreachable {
        await reachability.becameUnreachable.wait(timeout: .seconds(5))
        try Task.checkCancellation()
      }
      // One call that timed out may only have been slow: the first probe, at once, tells. Only
      // an outage the probe confirms is logged.
      let clock = ContinuousClock()
      let started = clock.now
      var confirmed = false
      while reachability.isUnreachable {
        _ = try? await server.health(timeout: timeout)
        guard reachability.isUnreachable else { break }
        if !confirmed {
          confirmed = true
          let cause = if case .unreachable(_, let cause) = reachability.current { cause } else { "" }
          logger.warning(
            "no kiam server answers: serving pods from the cache and probing the servers",
            metadata: ["cause": "\(cause)"])
        }
        try await Task.sleep(for: interval)
      }
      if confirmed { logger.info("a kiam server answers again", metadata: ["outage": "\(clock.now - started)"]) }
    }
  }
}
