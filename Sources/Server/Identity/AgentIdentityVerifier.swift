/// Proves which node an agent runs on (kiam #521: without this, any agent certificate obtains
/// any pod's role).
public protocol AgentIdentityVerifier: Sendable {
  /// The node of the agent presenting `token`.
  /// - Throws: ``AgentIdentityError`` when the token is missing, invalid or not an agent's.
  func nodeName(token: String) async throws -> String
}

/// Why an agent's identity was not accepted.
public struct AgentIdentityError: Error, Sendable, CustomStringConvertible {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}

/// gRPC metadata carrying the agent's projected service-account token.
public enum AgentIdentityMetadata {
  /// `authorization: Bearer <token>`.
  public static let key = "authorization"
  /// The audience the token must be issued for.
  public static let audience = "kiam"
}
