import KiamShared

/// A failed Kubernetes API call, explained for operators.
public struct KubernetesAPIError: Error, Sendable, CustomStringConvertible {
  /// HTTP status; 0 when no response was received.
  public let statusCode: Int
  /// The RBAC verb of the call (`list`, `watch`, `create`, …).
  public let verb: String
  /// The resource (`pods`, `namespaces`, `events`, `tokenreviews`).
  public let resource: String
  /// The API's `Status.message`, or the transport error.
  public let message: String

  public init(statusCode: Int, verb: String, resource: String, message: String) {
    self.statusCode = statusCode
    self.verb = verb
    self.resource = resource
    self.message = message
  }

  /// 410 Gone: the resourceVersion is too old; list again.
  public var isGone: Bool { statusCode == 410 }

  public var description: String {
    switch statusCode {
    case 401:
      return
        "kubernetes API rejected our credentials for \(verb) \(resource) (401 Unauthorized): check the service account token or kubeconfig user (\(message))"
    case 403:
      return
        "kubernetes API denied \(verb) \(resource) (403 Forbidden): RBAC must allow verb \"\(verb)\" on resource \"\(resource)\" for the kiam server's service account (\(message))"
    case 0:
      return "kubernetes API unreachable for \(verb) \(resource): \(message)"
    default:
      return "kubernetes API error for \(verb) \(resource) (\(statusCode)): \(message)"
    }
  }
}
