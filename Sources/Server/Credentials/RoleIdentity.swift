/// What credentials are issued for: a role ARN plus the pod's session-name and external-id
/// annotations. Pods sharing all three share credentials (kiam's cache key, §5.7).
public struct RoleIdentity: Sendable, Hashable, CustomStringConvertible {
  public let role: ResolvedRole
  /// The raw `iam.amazonaws.com/session-name` annotation (empty when absent).
  public let sessionNameAnnotation: String
  /// The raw `iam.amazonaws.com/external-id` annotation (empty when absent).
  public let externalID: String

  public init(role: ResolvedRole, sessionNameAnnotation: String = "", externalID: String = "") {
    self.role = role
    self.sessionNameAnnotation = sessionNameAnnotation
    self.externalID = externalID
  }

  /// kiam's cache key text: `<arn>|<session-name>|<external-id>`.
  public var description: String { "\(role.arn)|\(sessionNameAnnotation)|\(externalID)" }

  /// The STS `RoleSessionName`: `kiam-` + (annotation, else `defaultSession`), cut to 63
  /// characters when longer than 64, every character outside `[A-Za-z0-9_+=,.@-]` replaced by `-`
  /// (kiam §5.9).
  public func sessionName(defaultSession: String) -> String {
    var name = "kiam-" + (sessionNameAnnotation.isEmpty ? defaultSession : sessionNameAnnotation)
    if name.count > 64 { name = String(name.prefix(63)) }
    return String(
      name.map { c -> Character in
        let allowed = c.isASCII && (c.isLetter || c.isNumber || "_+=,.@-".contains(c))
        return allowed ? c : "-"
      })
  }

  /// The external ID with all but the last 3 characters masked, for logs.
  public var maskedExternalID: String {
    guard externalID.count > 3 else { return String(repeating: "*", count: externalID.count) }
    return String(repeating: "*", count: externalID.count - 3) + externalID.suffix(3)
  }
}
