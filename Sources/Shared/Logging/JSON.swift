/// Minimal JSON string escaping shared by log lines and HTTP bodies (no Foundation on hot paths).
public enum JSON {
  /// Appends `value` as a quoted, escaped JSON string.
  public static func appendString(_ value: String, to out: inout String) {
    out.append("\"")
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": out.append("\\\"")
      case "\\": out.append("\\\\")
      case "\n": out.append("\\n")
      case "\r": out.append("\\r")
      case "\t": out.append("\\t")
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
      default:
        out.unicodeScalars.append(scalar)
      }
    }
    out.append("\"")
  }

  /// Returns `value` as a quoted, escaped JSON string.
  public static func quote(_ value: String) -> String {
    var out = ""
    appendString(value, to: &out)
    return out
  }
}
