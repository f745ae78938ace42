/// Formatting and parsing of the `YYYY-MM-DDTHH:MM:SSZ` timestamps used by kiam's credentials,
/// STS and logs, always in UTC and without Foundation.
public enum RFC3339 {
  /// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
  public static func format(epochSeconds: Int64) -> String {
    let days = floorDiv(epochSeconds, 86_400)
    let secondsOfDay = epochSeconds - days * 86_400
    let (year, month, day) = civil(fromDays: days)
    let hour = secondsOfDay / 3600
    let minute = (secondsOfDay % 3600) / 60
    let second = secondsOfDay % 60
    return pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + "T" + pad(hour, 2) + ":"
      + pad(minute, 2) + ":" + pad(second, 2) + "Z"
  }

  /// Parses an ISO 8601 / RFC 3339 timestamp (`2021-03-01T12:15:00Z`, fractional seconds and
  /// numeric offsets accepted) into seconds since the Unix epoch.
  public static func parse(_ text: String) -> Int64? {
    let u = Array(text.utf8)
    func num(_ start: Int, _ count: Int) -> Int64? {
      guard start + count <= u.count else { return nil }
      var v: Int64 = 0
      for i in start..<(start + count) {
        let c = u[i]
        guard c >= 48, c <= 57 else { return nil }
        v = v * 10 + Int64(c - 48)
      }
      return v
    }
    guard u.count >= 19, u[4] == 45, u[7] == 45, u[10] == 84 || u[10] == 116 || u[10] == 32, u[13] == 58, u[16] == 58,
      let year = num(0, 4), let month = num(5, 2), let day = num(8, 2),
      let hour = num(11, 2), let minute = num(14, 2), let second = num(17, 2),
      (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
    else { return nil }
    var index = 19
    if index < u.count, u[index] == 46 {  // fractional seconds, ignored
      index += 1
      while index < u.count, u[index] >= 48, u[index] <= 57 { index += 1 }
    }
    var offset: Int64 = 0
    if index < u.count {
      switch u[index] {
      case 90, 122:  // Z or z
        index += 1
      case 43, 45:  // +hh:mm, -hh:mm, +hhmm, +hh
        let negative = u[index] == 45
        guard let oh = num(index + 1, 2) else { return nil }
        var om: Int64 = 0
        if index + 3 < u.count, u[index + 3] == 58 {
          guard let m = num(index + 4, 2) else { return nil }
          om = m
          index += 6
        } else if let m = num(index + 3, 2) {
          om = m
          index += 5
        } else {
          index += 3
        }
        offset = (oh * 3600 + om * 60) * (negative ? -1 : 1)
      default:
        return nil
      }
    }
    guard index == u.count else { return nil }
    let days = daysFromCivil(year: year, month: month, day: day)
    return days * 86_400 + hour * 3600 + minute * 60 + second - offset
  }

  private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    a >= 0 ? a / b : -((-a + b - 1) / b)
  }

  private static func pad(_ value: Int64, _ width: Int) -> String {
    let s = String(value)
    return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
  }

  // Howard Hinnant's civil-from-days algorithms.
  private static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (m <= 2 ? y + 1 : y, m, d)
  }

  private static func daysFromCivil(year: Int64, month: Int64, day: Int64) -> Int64 {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yoe = y - era * 400
    let mp = month > 2 ? month - 3 : month + 9
    let doy = (153 * mp + 2) / 5 + day - 1
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
    return era * 146_097 + doe - 719_468
  }
}
