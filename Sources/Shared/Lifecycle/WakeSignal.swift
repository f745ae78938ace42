import Synchronization

/// Wakes one waiting loop: `signal()` from anywhere, `wait(timeout:)` in the loop. Signals that
/// arrive while nobody waits are remembered (coalesced), so none is lost.
public final class WakeSignal: Sendable {
  private struct State {
    var pending = false
    var waiter: CheckedContinuation<Void, Never>?
  }
  private let state = Mutex(State())

  public init() {}

  /// Wakes the waiter, or the next one to wait.
  public func signal() {
    let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
      if let waiter = state.waiter {
        state.waiter = nil
        return waiter
      }
      state.pending = true
      return nil
    }
    waiter?.resume()
  }

  /// Returns after a signal, after `timeout`, or on cancellation.
  public func wait(timeout: Duration?) async {
    if state.withLock({ state in
      let was = state.pending
      state.pending = false
      return was
    }) {
      return
    }
    await withTaskGroup(of: Void.self) { group in
      group.addTask { [self] in
        await withTaskCancellationHandler {
          await withCheckedContinuation { continuation in
            let resumeNow: Bool = state.withLock { state in
              if state.pending || Task.isCancelled {
                state.pending = false
                return true
              }
              state.waiter = continuation
              return false
            }
            if resumeNow { continuation.resume() }
          }
        } onCancel: { [self] in
          let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            let waiter = state.waiter
            state.waiter = nil
            return waiter
          }
          waiter?.resume()
        }
      }
      if let timeout {
        group.addTask { try? await Task.sleep(for: timeout) }
      }
      await group.next()
      group.cancelAll()
    }
  }
}
