extension MemoryTrimService {
  /// When to trim, period by period, after the start-up trims.
  ///
  /// - Once after each busy period, in the first idle period that follows.
  /// - When idle and the resident size has grown by ``growth`` bytes over the baseline: the
  ///   largest resident size seen in the ``settlePeriods`` idle periods after the last trim,
  ///   which is what the periodic work (keepalive pings, DNS refreshes, rule checks) faults back
  ///   in (the longest of those repeats every 30 s; four 10 s periods cover it). Rare work (a
  ///   reconnect's TLS handshake, a credentials refresh, a new pod's first request) leaves pages
  ///   behind that otherwise stay resident until the next busy period; rare work inside the
  ///   settling periods themselves raises the baseline and is only given back after the next
  ///   busy period.
  struct Decision: Equatable {
    /// Growth over the baseline, in bytes, that calls for a trim.
    let growth: Int
    /// Idle periods after a trim over which the baseline is taken.
    let settlePeriods: Int
    var busySinceTrim = false
    var baseline = 0
    var settledPeriods = 0

    init(growth: Int, settlePeriods: Int = 4) {
      self.growth = growth
      self.settlePeriods = settlePeriods
    }

    /// Whether to trim now, given the CPU time used in the period that just ended and the
    /// resident size in bytes (0 when unknown: never trims for growth).
    mutating func next(used: Duration, idleCPU: Duration, resident: Int) -> Bool {
      if used >= idleCPU {
        busySinceTrim = true
        return false
      }
      if busySinceTrim {
        trimmed()
        return true
      }
      guard resident > 0 else { return false }
      if settledPeriods < settlePeriods {
        baseline = max(baseline, resident)
        settledPeriods += 1
        return false
      }
      guard resident >= baseline + growth else { return false }
      trimmed()
      return true
    }

    private mutating func trimmed() {
      busySinceTrim = false
      baseline = 0
      settledPeriods = 0
    }
  }
}
