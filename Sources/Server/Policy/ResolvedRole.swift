/// A role name resolved against the base ARN: `myrole` → `arn:aws:iam::123:role/myrole`.
public struct ResolvedRole: Sendable, Hashable, CustomStringConvertible {
  /// The role name with its path (`path/app`), as kiam reports it.
  public let name: String
  /// The full role ARN.
  public let arn: String

  public init(name: String, arn: String) {
    self.name = name
    self.arn = arn
  }

  public var description: String { arn }

  /// The account ID in the ARN, when it has one.
  public var accountID: String? {
    let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
    guard parts.count == 6, !parts[4].isEmpty else { return nil }
    return String(parts[4])
  }
}
