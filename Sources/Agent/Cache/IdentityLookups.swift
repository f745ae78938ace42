import GRPCCore
import KiamShared
import Synchronization

/// One identity lookup per IP at a time: when many requests from a pod need the server at once
/// (its identity window just ended under load), the first asks and the others wait for that answer.
final class IdentityLookups: Sendable {
  private let inFlight = Mutex<[String: AsyncValue<Result<PodIdentity, ServerCallError>>]>([:])

  /// Runs `lookup` for `ip`, or joins the one already running.
  func lookup(
    ip: String, _ lookup: @Sendable () async -> Result<PodIdentity, ServerCallError>
  ) async -> Result<PodIdentity, ServerCallError> {
    let (value, isLeader): (AsyncValue<Result<PodIdentity, ServerCallError>>, Bool) = inFlight.withLock { map in
      if let existing = map[ip] { return (existing, false) }
      let fresh = AsyncValue<Result<PodIdentity, ServerCallError>>()
      map[ip] = fresh
      return (fresh, true)
    }
    if isLeader {
      let result = await lookup()
      inFlight.withLock { _ = $0.removeValue(forKey: ip) }
      value.succeed(result)
      return result
    }
    return (try? await value.value) ?? .failure(ServerCallError(code: .cancelled, message: "lookup abandoned"))
  }
}
