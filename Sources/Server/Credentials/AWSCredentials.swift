/// Temporary AWS credentials as served to pods.
public struct AWSCredentials: Sendable, Hashable {
  public var accessKeyID: String
  public var secretAccessKey: String
  public var sessionToken: String
  /// Unix seconds.
  public var expiration: Int64
  /// When the server obtained them from STS, Unix seconds.
  public var lastUpdated: Int64

  public init(accessKeyID: String, secretAccessKey: String, sessionToken: String, expiration: Int64, lastUpdated: Int64)
  {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
    self.expiration = expiration
    self.lastUpdated = lastUpdated
  }
}
