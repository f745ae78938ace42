/// Exponential backoff with full jitter: each delay is random in [initial, min(max, initial·2ⁿ)].
public struct Backoff: Sendable {
  public let initial: Duration
  public let maximum: Duration
  public let multiplier: Double
  private var attempt = 0

  public init(initial: Duration, maximum: Duration, multiplier: Double = 2) {
    self.initial = initial
    self.maximum = maximum
    self.multiplier = multiplier
  }

  /// The next delay.
  public mutating func next() -> Duration {
    let ceiling = min(initial.seconds * pow(multiplier, Double(attempt)), maximum.seconds)
    attempt += 1
    let seconds = Double.random(in: min(initial.seconds, ceiling)...ceiling)
    return .nanoseconds(Int64(seconds * 1e9))
  }

  /// Starts over after a success.
  public mutating func reset() { attempt = 0 }

  private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var i = 0.0
    while i < exponent && result < 1e12 {
      result *= base
      i += 1
    }
    return result
  }
}
