import Foundation
import KiamShared

/// Conversions from flag text to typed values, each failing with a one-line error naming the flag.
enum FlagValues {
  static func duration(_ text: String?, flag: String, default fallback: Duration) throws -> Duration {
    guard let text else { return fallback }
    do {
      return try GoDuration.parse(text)
    } catch {
      throw KiamError.flag(flag, "invalid duration \(JSON.quote(text)) (examples: 500ms, 15m, 1h)")
    }
  }

  static func positiveDuration(_ text: String?, flag: String, default fallback: Duration) throws -> Duration {
    let value = try duration(text, flag: flag, default: fallback)
    guard value > .zero else { throw KiamError.flag(flag, "must be greater than 0, got \(text ?? "")") }
    return value
  }

  static func hostPort(_ text: String?, flag: String, default fallback: String) throws -> HostPort {
    let value = text ?? fallback
    do {
      return try HostPort.parse(value)
    } catch let error as KiamError {
      throw KiamError.flag(flag, error.message)
    }
  }

  static func optionalHostPort(_ text: String?, flag: String) throws -> HostPort? {
    guard let text, !text.isEmpty else { return nil }
    return try hostPort(text, flag: flag, default: text)
  }

  /// The node's addresses for `--host` / `HOST_IP`: one IP, or one of each family separated by a
  /// comma, as the downward API's `status.podIPs` gives them to the host-network agent on a
  /// dual-stack node (the first is `status.podIP`).
  static func nodeAddresses(_ text: String, flag: String) throws -> [String] {
    var addresses: [String] = []
    for part in text.split(separator: ",", omittingEmptySubsequences: false) {
      let candidate = part.trimmingCharacters(in: .whitespaces)
      guard !candidate.hasPrefix("["), let address = CanonicalIP.normalize(candidate), !candidate.contains("%") else {
        throw KiamError.flag(
          flag,
          "\(JSON.quote(candidate)) is not an IP address (the node's IP, status.podIP of the host-network agent, or status.podIPs for dual-stack pods)"
        )
      }
      if let same = addresses.first(where: { $0.contains(":") == address.contains(":") }) {
        throw KiamError.flag(
          flag,
          "\(JSON.quote(text)) has two \(address.contains(":") ? "IPv6" : "IPv4") addresses (\(same), \(address)); give at most one of each family"
        )
      }
      addresses.append(address)
    }
    return addresses
  }

  static func regexp(_ text: String, flag: String) throws -> GoRegexp {
    do {
      return try GoRegexp(text)
    } catch let error as KiamError {
      throw KiamError.flag(flag, error.message)
    }
  }

  static func integer(_ text: String?, flag: String, default fallback: Int, range: ClosedRange<Int>) throws -> Int {
    guard let text else { return fallback }
    guard let value = Int(text), range.contains(value) else {
      throw KiamError.flag(
        flag, "invalid value \(JSON.quote(text)), want an integer in \(range.lowerBound)...\(range.upperBound)")
    }
    return value
  }

  static func number(_ text: String?, flag: String, default fallback: Double) throws -> Double {
    guard let text else { return fallback }
    guard let value = Double(text), value > 0, value.isFinite else {
      throw KiamError.flag(flag, "invalid value \(JSON.quote(text)), want a positive number")
    }
    return value
  }

  /// The file must exist and be readable (as kingpin's `ExistingFile`, plus readability).
  static func readableFile(_ path: String?, flag: String, context: ResolveContext) throws -> String {
    guard let path, !path.isEmpty else { throw KiamError.flag(flag, "required flag not provided") }
    let checked = context.path(path)
    guard FileAccess.isReadableFile(checked) else {
      throw KiamError.flag(flag, "file \(JSON.quote(path)) \(FileAccess.problem(checked))")
    }
    return path
  }
}
