import KiamShared

/// Turns role names from annotations and URLs into ARNs, exactly as kiam does (§5.5):
/// - empty → error `role can't be empty`;
/// - `arn:…` → kept; the name is what follows the fifth `:` minus a leading `role/`;
/// - otherwise one leading `/` is stripped and the base ARN prefixed (`myrole`, `/myrole`,
///   `team/app`, `/team/app` all work).
public struct RoleARNResolver: Sendable {
  /// The prefix for names that are not ARNs, e.g. `arn:aws:iam::123456789012:role/`.
  public let baseARN: String

  public init(baseARN: String) {
    self.baseARN = baseARN
  }

  /// The error text kiam's resolver returns for an empty role (part of the gRPC contract).
  public static let emptyRoleMessage = "role can't be empty"

  /// IAM's limits: an ARN has at most 2048 characters, a role name 64, its path 512.
  public static let maxARNLength = 2048
  public static let maxNameLength = 64
  public static let maxPathLength = 512

  public func resolve(_ role: String) throws -> ResolvedRole {
    guard !role.isEmpty else { throw KiamError(code: .invalidInput, message: Self.emptyRoleMessage) }
    let resolved: ResolvedRole
    if role.hasPrefix("arn:") {
      let parts = role.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
      var name = parts.count == 6 ? String(parts[5]) : role
      if name.hasPrefix("role/") { name.removeFirst("role/".count) }
      resolved = ResolvedRole(name: name, arn: role)
    } else {
      let name = role.hasPrefix("/") ? String(role.dropFirst()) : role
      resolved = ResolvedRole(name: name, arn: baseARN + name)
    }
    try Self.checkLimits(resolved)
    return resolved
  }

  /// Refuses roles no IAM role can have (before any expression or STS sees them: a 3,000
  /// character annotation cost every namespace expression time, and STS a call).
  static func checkLimits(_ role: ResolvedRole) throws {
    func tooLong(_ what: String, _ limit: Int, _ count: Int) -> KiamError {
      KiamError(
        code: .invalidInput,
        message:
          "role \(JSON.quote(String(role.name.prefix(64)) + (role.name.count > 64 ? "…" : ""))) is longer than IAM allows: "
          + "\(what) has at most \(limit) characters, this one \(count)")
    }
    let arnLength = role.arn.utf8.count
    guard arnLength <= maxARNLength else { throw tooLong("a role ARN", maxARNLength, arnLength) }
    let segments = role.name.split(separator: "/", omittingEmptySubsequences: false)
    let name = segments.last ?? ""
    guard name.utf8.count <= maxNameLength else { throw tooLong("a role name", maxNameLength, name.utf8.count) }
    let pathLength = role.name.utf8.count - name.utf8.count + 1
    guard pathLength <= maxPathLength else { throw tooLong("a role path", maxPathLength, pathLength) }
  }

  /// The base ARN of an instance profile ARN: `arn:aws:iam::123:instance-profile/x` →
  /// `arn:aws:iam::123:role/` (the profile's path is not a role path).
  public static func baseARN(fromInstanceProfileARN arn: String) throws -> String {
    let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
    guard parts.count == 6, parts[0] == "arn", !parts[1].isEmpty, parts[2] == "iam", !parts[4].isEmpty else {
      throw KiamError(code: .invalidInput, message: "not an instance profile ARN: \(JSON.quote(arn))")
    }
    return parts[0..<5].joined(separator: ":") + ":role/"
  }
}
