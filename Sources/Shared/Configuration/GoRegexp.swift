/// A regular expression given on the command line or in an annotation (RE2/Go syntax, which the
/// Swift regex engine accepts for the constructs kiam users write).
public struct GoRegexp: @unchecked Sendable, CustomStringConvertible {
  // `Regex` is immutable after construction; matching does not mutate shared state.
  private let regex: Regex<AnyRegexOutput>
  /// The source text.
  public let pattern: String

  /// Compiles `pattern`.
  /// - Throws: ``KiamError`` (``KiamError/Code/invalidInput``) with the compiler's explanation.
  public init(_ pattern: String) throws {
    do {
      regex = try Regex(pattern)
    } catch {
      throw KiamError(
        code: .invalidInput, message: "error parsing regexp \(JSON.quote(pattern)): \(KiamError.describe(error))")
    }
    self.pattern = pattern
  }

  /// True when the expression matches anywhere in `text` (Go's `MatchString`).
  public func matches(_ text: some StringProtocol) -> Bool {
    (try? regex.firstMatch(in: String(text))) != nil
  }

  public var description: String { pattern }
}
