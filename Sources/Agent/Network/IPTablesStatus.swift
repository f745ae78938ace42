import Synchronization

/// Whether the agent's DNAT rule is in place, as ``IPTablesService`` last found it: `/health?deep`
/// is not ready until it is (pods would otherwise reach the node's own metadata service, or
/// nothing), so a readiness probe or a demo waits for it.
final class IPTablesStatus: Sendable {
  enum State: Sendable, Equatable {
    /// Not added yet (the listener is not bound, or the first attempt is running).
    case pending
    case inPlace
    /// The last attempt to add or check it failed.
    case failed(String)
  }

  private let state = Mutex(State.pending)

  init() {}

  var current: State { state.withLock { $0 } }

  func set(_ new: State) { state.withLock { $0 = new } }
}
