import Synchronization

/// A value that is set once and awaited by any number of tasks (e.g. a listener's bound address).
public final class AsyncValue<Value: Sendable>: Sendable {
  private enum State {
    case pending(Waiters<Result<Value, any Error>>)
    case done(Result<Value, any Error>)
  }
  private let state = Mutex<State>(.pending(Waiters()))

  public init() {}

  /// Sets the value (the first call wins) and wakes every waiter.
  public func set(_ result: Result<Value, any Error>) {
    let waiters = state.withLock { state -> [CheckedContinuation<Result<Value, any Error>, Never>] in
      guard case .pending(var waiters) = state else { return [] }
      state = .done(result)
      return waiters.removeAll()
    }
    for waiter in waiters { waiter.resume(returning: result) }
  }

  /// Sets the value.
  public func succeed(_ value: Value) { set(.success(value)) }
  /// Sets an error.
  public func fail(_ error: any Error) { set(.failure(error)) }

  /// The value once it is set; `CancellationError` if the waiting task is cancelled first.
  public var value: Value {
    get async throws {
      let id: Waiters<Result<Value, any Error>>.ID? = state.withLock { state in
        guard case .pending(var waiters) = state else { return nil }
        let id = waiters.makeID()
        state = .pending(waiters)
        return id
      }
      guard let id else { return try current!.get() }
      return try await Waiters.wait { continuation in
        state.withLock { state in
          switch state {
          case .pending(var waiters):
            waiters.add(continuation, id: id)
            state = .pending(waiters)
            return nil
          case .done(let result):
            return result
          }
        }
      } cancel: {
        state.withLock { state in
          guard case .pending(var waiters) = state, let waiter = waiters.remove(id) else { return nil }
          state = .pending(waiters)
          return (waiter, .failure(CancellationError()))
        }
      }.get()
    }
  }

  /// The value if it is already set.
  public var current: Result<Value, any Error>? {
    state.withLock { state in
      if case .done(let result) = state { return result }
      return nil
    }
  }
}
