import Synchronization

/// A value that is set once and awaited by any number of tasks (e.g. a listener's bound address).
public final class AsyncValue<Value: Sendable>: Sendable {
  private enum State {
    case pending([CheckedContinuation<Value, any Error>])
    case done(Result<Value, any Error>)
  }
  private let state = Mutex<State>(.pending([]))

  public init() {}

  /// Sets the value (the first call wins) and wakes every waiter.
  public func set(_ result: Result<Value, any Error>) {
    let waiters: [CheckedContinuation<Value, any Error>] = state.withLock { state in
      guard case .pending(let waiters) = state else { return [] }
      state = .done(result)
      return waiters
    }
    for waiter in waiters { waiter.resume(with: result) }
  }

  /// Sets the value.
  public func succeed(_ value: Value) { set(.success(value)) }
  /// Sets an error.
  public func fail(_ error: any Error) { set(.failure(error)) }

  /// The value once it is set.
  public var value: Value {
    get async throws {
      try await withCheckedThrowingContinuation { continuation in
        let ready: Result<Value, any Error>? = state.withLock { state in
          switch state {
          case .pending(var waiters):
            waiters.append(continuation)
            state = .pending(waiters)
            return nil
          case .done(let result):
            return result
          }
        }
        if let ready { continuation.resume(with: ready) }
      }
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
