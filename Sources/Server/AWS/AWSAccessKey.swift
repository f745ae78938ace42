/// Credentials that sign AWS requests: the server's own, or an assumed role's.
public struct AWSAccessKey: Sendable, Hashable, CustomStringConvertible {
  public var accessKeyID: String
  public var secretAccessKey: String
  public var sessionToken: String?
  /// Unix seconds; nil for long-lived keys.
  public var expiration: Double?

  public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Double? = nil) {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
    self.expiration = expiration
  }

  /// Never prints the secret or token.
  public var description: String {
    "AWSAccessKey(\(accessKeyID), expires: \(expiration.map { "\(Int64($0))" } ?? "never"))"
  }
}
