/// Issues credentials for role identities. The STS-backed implementation caches, prefetches and
/// refreshes; the gRPC service only asks.
public protocol CredentialsProvider: Sendable {
  /// Credentials for `identity`, valid for at least the configured minimum lifetime.
  /// - Throws: the STS error (its ``CredentialsError/message`` is what agents see).
  func credentials(for identity: RoleIdentity) async throws -> AWSCredentials
}

/// A failure to obtain credentials, as reported to agents and in `KiamCredentialError` events.
public struct CredentialsError: Error, Sendable, CustomStringConvertible {
  /// The AWS error code (`AccessDenied`, `Throttling`, …) or a kiam code for local failures.
  public let code: String
  /// The AWS message.
  public let message: String
  /// Whether retrying soon may help (throttling, 5xx, network).
  public let isTransient: Bool

  public init(code: String, message: String, isTransient: Bool) {
    self.code = code
    self.message = message
    self.isTransient = isTransient
  }

  /// `Code: Message`, the form kiam used in errors and events (without request IDs, so events aggregate).
  public var description: String { "\(code): \(message)" }
}
