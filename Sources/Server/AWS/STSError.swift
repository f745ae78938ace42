/// An STS error response (`<ErrorResponse><Error><Code>…`), or a transport failure.
public struct STSError: Error, Sendable, CustomStringConvertible {
  /// `AccessDenied`, `Throttling`, `ExpiredToken`, …; `RequestError` for transport failures.
  public let code: String
  public let message: String
  /// HTTP status; 0 when no response arrived.
  public let statusCode: Int
  public let requestID: String?

  public init(code: String, message: String, statusCode: Int, requestID: String? = nil) {
    self.code = code
    self.message = message
    self.statusCode = statusCode
    self.requestID = requestID
  }

  static let throttlingCodes: Set<String> = [
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException",
  ]

  /// Rate limiting by STS.
  public var isThrottling: Bool { Self.throttlingCodes.contains(code) }

  /// Worth retrying: throttling, 5xx, timeouts and transport failures.
  public var isTransient: Bool {
    isThrottling || statusCode >= 500 || statusCode == 0
      || [
        "RequestTimeout", "RequestTimeoutException", "InternalFailure", "ServiceUnavailable", "IDPCommunicationError",
      ]
      .contains(code)
  }

  /// `Code: Message` (no request ID, so events aggregate).
  public var description: String { "\(code): \(message)" }

  var credentialsError: CredentialsError { CredentialsError(code: code, message: message, isTransient: isTransient) }
}
