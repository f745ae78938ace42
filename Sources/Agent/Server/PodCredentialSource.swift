/// Where ``PodCredentialCache`` asks when it cannot answer from memory: a kiam server
/// (``KiamServerClient``), or a scripted one in tests.
protocol PodCredentialSource: Sendable {
  /// No server answered the last call (``ServerReachability``): answer from memory at once.
  var isUnreachable: Bool { get }
  /// `GetPodRole`: who the pod behind `ip` is.
  func podRole(ip: String, timeout: Duration) async throws(ServerCallError) -> PodIdentity
  /// `GetPodCredentials`: credentials for `role` if it is the pod's.
  func podCredentials(ip: String, role: String, timeout: Duration) async throws(ServerCallError) -> ServerCredentials
}

extension KiamServerClient: PodCredentialSource {
  var isUnreachable: Bool { reachability.isUnreachable }
}
