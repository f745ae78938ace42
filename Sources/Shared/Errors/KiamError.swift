/// An error raised by kiam itself, carrying a stable ``Code``, a human-readable message and the
/// underlying cause, if any.
///
/// Errors are mapped to a transport status (gRPC status, HTTP status, process exit code) only at
/// the edge of the system; inside, they travel as `KiamError` so no context is lost.
public struct KiamError: Error, Sendable, CustomStringConvertible {
  /// A stable, extensible classification of a ``KiamError``.
  public struct Code: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// A command-line flag or configuration value is invalid.
    public static let invalidConfiguration = Code("invalidConfiguration")
    /// A certificate, key or CA bundle could not be read or is unusable.
    public static let tlsMaterial = Code("tlsMaterial")
    /// A peer certificate failed verification.
    public static let peerVerification = Code("peerVerification")
    /// A network listener could not be started.
    public static let listen = Code("listen")
    /// The server is not ready to answer (caches not synced yet).
    public static let notReady = Code("notReady")
    /// A remote service (Kubernetes API, STS, metadata service) failed.
    public static let upstream = Code("upstream")
    /// An input (request, annotation, document) was malformed.
    public static let invalidInput = Code("invalidInput")
    /// A lookup found nothing.
    public static let notFound = Code("notFound")
    /// Access was refused by policy.
    public static let forbidden = Code("forbidden")
    /// A deadline passed.
    public static let timeout = Code("timeout")
    /// An unexpected internal failure.
    public static let `internal` = Code("internal")
  }

  /// The classification of the error.
  public var code: Code
  /// The message, meant for operators and logs.
  public var message: String
  /// The error that caused this one, if any.
  public var cause: (any Error)?

  /// Creates an error.
  /// - Parameters:
  ///   - code: The classification.
  ///   - message: A one-line, human-readable message.
  ///   - cause: The underlying error, if any.
  public init(code: Code, message: String, cause: (any Error)? = nil) {
    self.code = code
    self.message = message
    self.cause = cause
  }

  public var description: String {
    if let cause {
      return "\(message): \(KiamError.describe(cause))"
    }
    return message
  }

  /// Describes any error on one line, unwrapping `KiamError` causes.
  public static func describe(_ error: any Error) -> String {
    if let kiam = error as? KiamError { return kiam.description }
    let text = String(describing: error)
    return text.split(whereSeparator: \.isNewline).joined(separator: " ")
  }
}

extension KiamError {
  /// A configuration error naming the flag and the problem, e.g. `--sync: bad duration "x"`.
  public static func flag(_ name: String, _ problem: String) -> KiamError {
    KiamError(code: .invalidConfiguration, message: "--\(name): \(problem)")
  }
}
