import KiamShared
import Synchronization

/// Whether the agent can reach a kiam server, as its last calls told.
///
/// The rule: one call that failed because no server answered (unavailable, deadline exceeded)
/// marks the servers ``State/unreachable(since:cause:)``; any call that got an answer, including
/// an error the server itself returned, marks them ``State/reachable``. While unreachable, a
/// request the cache can answer for the same pod is answered at once instead of waiting the
/// request budget for a server that is not there, and ``ServerProbeService`` asks the servers in
/// the background until one answers.
final class ServerReachability: Sendable {
  enum State: Sendable, Equatable {
    case reachable
    case unreachable(since: ContinuousClock.Instant, cause: String)
  }

  private let state = Mutex(State.reachable)
  /// Signalled when the servers become unreachable (the probe waits for it).
  let becameUnreachable = WakeSignal()

  init() {}

  var current: State { state.withLock { $0 } }

  var isUnreachable: Bool {
    if case .unreachable = current { return true }
    return false
  }

  /// A call got an answer from a server.
  func answered() {
    state.withLock { $0 = .reachable }
  }

  /// A call failed because no server answered; `cause` says how.
  func failed(cause: String) {
    let wasReachable = state.withLock { state -> Bool in
      guard case .reachable = state else { return false }
      state = .unreachable(since: .now, cause: cause)
      return true
    }
    if wasReachable { becameUnreachable.signal() }
  }
}
