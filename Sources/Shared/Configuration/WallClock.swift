import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Wall-clock time in Unix seconds (credentials expiry, events, logs), injectable.
///
/// Everything that compares credentials' expiry with now takes a `WallClock`, so tests can run
/// hours of credential lifetimes through the real agent–server path in seconds:
/// ``system`` reads `CLOCK_REALTIME`; a ``ManualWallClock`` stands still until advanced and
/// tells the services that plan by wall time (``whenAdvanced(_:)``) to look again.
public struct WallClock: Sendable {
  private let manual: ManualWallClock?

  /// The system's clock.
  public static let system = WallClock(manual: nil)

  /// A clock the test moves.
  public static func manual(_ clock: ManualWallClock) -> WallClock { WallClock(manual: clock) }

  /// Seconds since the Unix epoch, now.
  public func now() -> Int64 { Int64(nowPrecise().rounded(.down)) }

  /// Seconds since the Unix epoch with fractions.
  public func nowPrecise() -> Double {
    if let manual { return manual.now }
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  /// Runs `action` whenever a manual clock is advanced (never for the system clock): a service
  /// that sleeps until a wall time (a scheduled refresh) must wake and look again.
  public func whenAdvanced(_ action: @escaping @Sendable () -> Void) {
    manual?.observe(action)
  }
}

/// A wall clock that moves only when told (tests).
public final class ManualWallClock: Sendable {
  private let state: Mutex<(now: Double, observers: [@Sendable () -> Void])>

  /// Starts at `start` (Unix seconds), by default the system's now.
  public init(start: Double = WallClock.system.nowPrecise()) {
    state = Mutex((start, []))
  }

  public var now: Double { state.withLock { $0.now } }

  /// Moves the clock forward and wakes whoever plans by it.
  public func advance(by duration: Duration) {
    let observers = state.withLock { state in
      state.now += duration.seconds
      return state.observers
    }
    for observer in observers { observer() }
  }

  fileprivate func observe(_ action: @escaping @Sendable () -> Void) {
    state.withLock { $0.observers.append(action) }
  }
}
