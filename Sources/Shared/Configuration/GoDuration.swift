/// Parsing and formatting of durations in Go's `time.ParseDuration` syntax (`500ms`, `1h30m`,
/// `1.5s`), which is what kiam's flags accept.
public enum GoDuration {
  private static let units: [(String, Int64)] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{00B5}s", 1_000),  // µs (micro sign)
    ("\u{03BC}s", 1_000),  // μs (Greek mu)
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
  ]

  /// Parses a Go duration string.
  /// - Parameter text: A string such as `300ms`, `-1.5h` or `2h45m`.
  /// - Returns: The duration.
  /// - Throws: ``KiamError`` with code ``KiamError/Code/invalidConfiguration`` when the text is not
  ///   a valid Go duration.
  public static func parse(_ text: String) throws -> Duration {
    func bad() -> KiamError {
      KiamError(code: .invalidConfiguration, message: "invalid duration \"\(text)\"")
    }
    var scalars = Substring(text).unicodeScalars[...]
    var negative = false
    if let first = scalars.first, first == "-" || first == "+" {
      negative = first == "-"
      scalars = scalars.dropFirst()
    }
    if String(scalars) == "0" { return .zero }
    if scalars.isEmpty { throw bad() }
    var totalNanos: Double = 0
    while !scalars.isEmpty {
      // Number: digits, optional fraction.
      var number = ""
      var sawDigit = false
      while let c = scalars.first, (c >= "0" && c <= "9") || c == "." {
        if c != "." { sawDigit = true }
        number.unicodeScalars.append(c)
        scalars = scalars.dropFirst()
      }
      guard sawDigit, number.filter({ $0 == "." }).count <= 1,
        let value = Double(number.hasPrefix(".") ? "0" + number : number)
      else {
        throw bad()
      }
      // Unit: everything up to the next digit or dot.
      var unit = ""
      while let c = scalars.first, !((c >= "0" && c <= "9") || c == ".") {
        unit.unicodeScalars.append(c)
        scalars = scalars.dropFirst()
      }
      guard let multiplier = units.first(where: { $0.0 == unit })?.1 else { throw bad() }
      totalNanos += value * Double(multiplier)
      if totalNanos > Double(Int64.max) { throw bad() }
    }
    let nanos = Int64(totalNanos.rounded())
    return .nanoseconds(negative ? -nanos : nanos)
  }

  /// Formats a duration the way Go's `Duration.String` does (`1m0s`, `500ms`, `1h30m0s`).
  public static func format(_ duration: Duration) -> String {
    var nanos = duration.nanoseconds
    if nanos == 0 { return "0s" }
    var sign = ""
    if nanos < 0 {
      sign = "-"
      nanos = -nanos
    }
    if nanos < 1_000_000_000 {
      if nanos < 1_000 { return "\(sign)\(nanos)ns" }
      if nanos < 1_000_000 { return sign + trim(Double(nanos) / 1_000) + "µs" }
      return sign + trim(Double(nanos) / 1_000_000) + "ms"
    }
    let hours = nanos / 3_600_000_000_000
    nanos %= 3_600_000_000_000
    let minutes = nanos / 60_000_000_000
    nanos %= 60_000_000_000
    let seconds = trim(Double(nanos) / 1_000_000_000)
    var out = sign
    if hours > 0 { out += "\(hours)h" }
    if hours > 0 || minutes > 0 { out += "\(minutes)m" }
    out += seconds + "s"
    return out
  }

  private static func trim(_ value: Double) -> String {
    var text = String(format: value)
    if text.contains(".") {
      while text.hasSuffix("0") { text.removeLast() }
      if text.hasSuffix(".") { text.removeLast() }
    }
    return text
  }
}

extension String {
  fileprivate init(format value: Double) {
    // Up to nine fractional digits, without Foundation.
    let scaled = (value * 1_000_000_000).rounded()
    let whole = Int64(scaled) / 1_000_000_000
    let fraction = Int64(scaled) % 1_000_000_000
    if fraction == 0 {
      self = String(whole)
    } else {
      var digits = String(fraction)
      digits = String(repeating: "0", count: 9 - digits.count) + digits
      self = "\(whole).\(digits)"
    }
  }
}

extension Duration {
  /// The duration in whole nanoseconds (saturating).
  public var nanoseconds: Int64 {
    let (seconds, attoseconds) = self.components
    let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    if overflow { return seconds < 0 ? .min : .max }
    return product &+ attoseconds / 1_000_000_000
  }

  /// The duration in (fractional) seconds.
  public var seconds: Double {
    let (seconds, attoseconds) = self.components
    return Double(seconds) + Double(attoseconds) / 1e18
  }
}
