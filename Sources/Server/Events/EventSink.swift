/// Where the server reports per-pod problems (Kubernetes Events on the pod).
public protocol EventSink: Sendable {
  /// Records a Warning event on `pod`. Must not block; may drop under pressure.
  func warning(pod: PodRecord, reason: String, message: String)
}

/// kiam's event reasons.
public enum EventReason {
  public static let roleForbidden = "KiamRoleForbidden"
  public static let credentialError = "KiamCredentialError"
}
