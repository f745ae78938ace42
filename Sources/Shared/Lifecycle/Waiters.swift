/// Tasks suspended until something happens, kept inside the owner's own locked state so that
/// "check, else register" is one step under the owner's lock (a change between the check and the
/// registration cannot be missed).
///
/// Every wait goes through ``wait(register:cancel:)``, which also removes and resumes the waiter
/// when its task is cancelled: no caller is left suspended after it gave up.
public struct Waiters<Value: Sendable>: Sendable {
  /// Identifies one waiter, to remove it when its task is cancelled.
  public struct ID: Hashable, Sendable {
    fileprivate let value: UInt64
  }

  private var next: UInt64 = 0
  private var waiting: [UInt64: CheckedContinuation<Value, Never>] = [:]

  public init() {}

  public var isEmpty: Bool { waiting.isEmpty }
  public var count: Int { waiting.count }

  /// A new waiter's identity (take it under the owner's lock before ``wait(register:cancel:)``).
  public mutating func makeID() -> ID {
    next += 1
    return ID(value: next)
  }

  /// Registers `continuation` as `id`.
  public mutating func add(_ continuation: CheckedContinuation<Value, Never>, id: ID) {
    waiting[id.value] = continuation
  }

  /// Removes `id`, returning its continuation to resume (nil when it was already resumed).
  public mutating func remove(_ id: ID) -> CheckedContinuation<Value, Never>? {
    waiting.removeValue(forKey: id.value)
  }

  /// Removes every waiter, returning them to resume outside the lock.
  public mutating func removeAll() -> [CheckedContinuation<Value, Never>] {
    defer { waiting = [:] }
    return Array(waiting.values)
  }

  /// Suspends until resumed, or until the task is cancelled.
  /// - Parameters:
  ///   - register: Under the owner's lock: the value at once if it is already there, else nil
  ///     after adding the continuation (with ``add(_:id:)``).
  ///   - cancel: Under the owner's lock: removes this waiter (``remove(_:)``) and returns its
  ///     continuation, if it was still waiting, with the value a cancelled waiter gets.
  public static func wait(
    register: (CheckedContinuation<Value, Never>) -> Value?,
    cancel: @Sendable () -> (CheckedContinuation<Value, Never>, Value)?
  ) async -> Value {
    await withTaskCancellationHandler {
      await withCheckedContinuation { continuation in
        if let ready = register(continuation) {
          continuation.resume(returning: ready)
        } else if Task.isCancelled, let (registered, value) = cancel() {
          // Cancelled before the handler was installed: it has already run and found nothing.
          registered.resume(returning: value)
        }
      }
    } onCancel: {
      if let (continuation, value) = cancel() { continuation.resume(returning: value) }
    }
  }
}
