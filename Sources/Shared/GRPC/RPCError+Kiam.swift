public import GRPCCore

extension RPCError.Code {
  /// The code's name as Go's grpc library prints it (`OK` is not an `RPCError.Code`), used for the
  /// `grpc_code` label and for error texts compatible with Go kiam (`rpc error: code = … desc = …`).
  public var goName: String {
    switch self {
    case .cancelled: "Canceled"
    case .unknown: "Unknown"
    case .invalidArgument: "InvalidArgument"
    case .deadlineExceeded: "DeadlineExceeded"
    case .notFound: "NotFound"
    case .alreadyExists: "AlreadyExists"
    case .permissionDenied: "PermissionDenied"
    case .resourceExhausted: "ResourceExhausted"
    case .failedPrecondition: "FailedPrecondition"
    case .aborted: "Aborted"
    case .outOfRange: "OutOfRange"
    case .unimplemented: "Unimplemented"
    case .internalError: "Internal"
    case .unavailable: "Unavailable"
    case .dataLoss: "DataLoss"
    case .unauthenticated: "Unauthenticated"
    default: "Unknown"
    }
  }
}

extension RPCError {
  /// The error as Go kiam's agent printed gRPC errors: `rpc error: code = Unknown desc = pod not found`.
  public var goDescription: String {
    "rpc error: code = \(code.goName) desc = \(message)"
  }
}

/// Response metadata our server adds to pod RPCs (unknown keys are ignored by Go kiam agents).
public enum PodMetadataKeys {
  /// The pod's UID.
  public static let uid = "kiam-pod-uid"
  /// The pod's `namespace/name`.
  public static let name = "kiam-pod-name"
  /// The resolved ARN of the role whose credentials are returned (GetPodCredentials).
  public static let roleARN = "kiam-role-arn"
  /// The server's `--min-credential-lifetime` in seconds (GetPodCredentials): agents refresh and
  /// stop serving credentials at the same floor, so pods never get less.
  public static let minimumLifetime = "kiam-min-credential-lifetime"
  /// The server's `--session-refresh` in seconds (GetPodCredentials): the server refreshes this
  /// long before the floor, so agents ask for the next credentials in between.
  public static let refreshMargin = "kiam-credential-refresh-margin"
}

/// Response metadata our server adds to `GetHealth` (the message itself stays `ok`).
public enum HealthMetadataKeys {
  /// Something degraded that does not stop the server from answering (one value per problem).
  public static let warning = "kiam-warning"

  /// The warnings in a `GetHealth` answer's metadata.
  public static func warnings(in metadata: Metadata) -> [String] {
    Array(metadata[stringValues: warning])
  }
}
