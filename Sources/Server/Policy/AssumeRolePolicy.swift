import KiamShared

/// kiam's composite policy (§5.4, §5.6): the requested role must be the pod's annotated role,
/// and the namespace's `iam.amazonaws.com/permitted` expression must match the role's ARN.
public struct AssumeRolePolicy: Sendable {
  public let resolver: RoleARNResolver

  public init(resolver: RoleARNResolver) {
    self.resolver = resolver
  }

  /// Decides whether `pod` may have `requestedRole`.
  /// - Throws: ``KiamError`` `role can't be empty` when the pod has no role annotation (as kiam,
  ///   this is an error, not a denial) or the requested role is empty.
  public func evaluate(pod: PodRecord, requestedRole: String, namespace: NamespaceRecord?) throws -> PolicyDecision {
    let annotated = try resolver.resolve(pod.role)
    let requested = try resolver.resolve(requestedRole)
    guard requested == annotated else {
      return .forbidden(explanation: "requested '\(requestedRole)' but annotated with '\(annotated.name)', forbidden")
    }
    return namespaceDecision(role: requested, annotation: pod.role, requestedRole: requestedRole, namespace: namespace)
  }

  /// The namespace part alone (used before prefetching a pod's role).
  /// - Parameters:
  ///   - role: The resolved role (matched in kiam v4's modes).
  ///   - annotation: The pod's role annotation as written (matched in kiam v3's mode).
  ///   - requestedRole: The role the caller asked for, for the explanation.
  public func namespaceDecision(
    role: ResolvedRole, annotation: String, requestedRole: String, namespace: NamespaceRecord?
  ) -> PolicyDecision {
    guard let namespace, let expression = namespace.permitted, !expression.isEmpty, let compiled = namespace.compiled
    else {
      return .forbidden(explanation: "namespace policy expression '(empty)' forbids role '\(requestedRole)'")
    }
    switch compiled {
    case .failure(let error):
      return .forbidden(explanation: "namespace policy expression '\(expression)' is invalid: \(error.message)")
    case .success(let regexp):
      let subject = namespace.matching.subject(role: role, annotation: annotation)
      if namespace.matching.allows(regexp, subject) { return .allowed(role) }
      return .forbidden(explanation: "namespace policy expression '\(expression)' forbids role '\(subject)'")
    }
  }
}
