import CRE2

/// A regular expression given on the command line or in an annotation, with Go's syntax and
/// semantics, as Go kiam compiled it: matched by RE2 (Debian's libre2), the engine Go's `regexp`
/// descends from. Matching takes time linear in the input whatever the expression (no
/// backtracking: `([a-z-]+/?)*$` against a crafted path cannot freeze the agent), and what Go
/// rejects is rejected here too (lookaround, backreferences, `\C`), with Go's error text.
public final class GoRegexp: @unchecked Sendable, CustomStringConvertible {
  // RE2 objects are immutable after construction and safe to match from many threads.
  private let expression: OpaquePointer
  /// The source text.
  public let pattern: String

  /// Compiles `pattern` on its own (never spliced into other text).
  /// - Throws: ``KiamError`` (``KiamError/Code/invalidInput``) with Go's message, e.g.
  ///   ``error parsing regexp: missing closing ): `(unclosed` ``.
  public init(_ pattern: String) throws {
    self.pattern = pattern
    if let unsupported = Self.goOnlyRejects(pattern) {
      throw Self.failure(code: "invalid escape sequence", fragment: unsupported)
    }
    var code: Int32 = 0
    var fragment = [CChar](repeating: 0, count: 256)
    let compiled =
      pattern.utf8.withContiguousStorageIfAvailable { bytes in
        bytes.withMemoryRebound(to: CChar.self) { chars in
          kiam_re2_compile(chars.baseAddress, chars.count, &code, &fragment, fragment.count)
        }
      }
      ?? Array(pattern.utf8).withUnsafeBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { chars in
          kiam_re2_compile(chars.baseAddress, chars.count, &code, &fragment, fragment.count)
        }
      }
    guard let compiled else {
      let text = String(decoding: fragment.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      // Go names no fragment for a trailing backslash.
      throw Self.failure(code: Self.goMessage(re2Code: code), fragment: code == 8 ? "" : text)
    }
    expression = compiled
  }

  deinit { kiam_re2_free(expression) }

  /// True when the expression matches anywhere in `text` (Go's `MatchString`).
  public func matches(_ text: some StringProtocol) -> Bool { match(text, anchored: false) }

  /// True when the expression matches the whole of `text`: the parsed expression anchored at both
  /// ends, as if written `^(?:expression)$` (but never by splicing text: `a)|(.*` does not parse).
  public func matchesWhole(_ text: some StringProtocol) -> Bool { match(text, anchored: true) }

  private func match(_ text: some StringProtocol, anchored: Bool) -> Bool {
    var string = String(text)
    return string.withUTF8 { bytes in
      bytes.withMemoryRebound(to: CChar.self) { chars in
        kiam_re2_match(expression, chars.baseAddress, chars.count, anchored ? 1 : 0) == 1
      }
    }
  }

  public var description: String { pattern }

  private static func failure(code: String, fragment: String) -> KiamError {
    KiamError(code: .invalidInput, message: "error parsing regexp: \(code): `\(fragment)`")
  }

  /// Go's `regexp/syntax` message for an RE2 error code (re2.h `RE2::ErrorCode`).
  static func goMessage(re2Code code: Int32) -> String {
    switch code {
    case 2: "invalid escape sequence"
    case 3: "invalid character class"
    case 4: "invalid character class range"
    case 5: "missing closing ]"
    case 6: "missing closing )"
    case 7: "unexpected )"
    case 8: "trailing backslash at end of expression"
    case 9: "missing argument to repetition operator"
    case 10: "invalid repeat count"
    case 11: "invalid nested repetition operator"
    case 12: "invalid or unsupported Perl syntax"
    case 13: "invalid UTF-8"
    case 14: "invalid named capture"
    case 15: "expression too large"
    default: "regexp/syntax: internal error"
    }
  }

  /// Escapes RE2 accepts and Go does not: `\C` (any byte). Returns the escape, or nil.
  static func goOnlyRejects(_ pattern: String) -> String? {
    var escaped = false
    for character in pattern {
      if escaped {
        if character == "C" { return "\\C" }
        escaped = false
      } else if character == "\\" {
        escaped = true
      }
    }
    return nil
  }
}
