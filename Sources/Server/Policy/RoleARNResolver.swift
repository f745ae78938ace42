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

  public func resolve(_ role: String) throws -> ResolvedRole {
    guard !role.isEmpty else { throw KiamError(code: .invalidInput, message: Self.emptyRoleMessage) }
    if role.hasPrefix("arn:") {
      let parts = role.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
      var name = parts.count == 6 ? String(parts[5]) : role
      if name.hasPrefix("role/") { name.removeFirst("role/".count) }
      return ResolvedRole(name: name, arn: role)
    }
    let name = role.hasPrefix("/") ? String(role.dropFirst()) : role
    return ResolvedRole(name: name, arn: baseARN + name)
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
