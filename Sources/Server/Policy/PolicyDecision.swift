/// The outcome of the assume-role policy for one request.
public enum PolicyDecision: Sendable, Equatable {
  case allowed(ResolvedRole)
  /// Denied, with kiam's explanation (logged and put in the `KiamRoleForbidden` event).
  case forbidden(explanation: String)
}
