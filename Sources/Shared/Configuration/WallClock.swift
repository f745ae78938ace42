#if canImport(Glibc)
import Glibc
#endif

/// Wall-clock time in Unix seconds (credentials expiry, events, logs).
public enum WallClock {
  /// Seconds since the Unix epoch, now.
  public static func now() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec)
  }

  /// Seconds since the Unix epoch with fractions.
  public static func nowPrecise() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }
}
