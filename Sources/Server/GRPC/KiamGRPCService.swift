import GRPCCore
import KiamShared
import Logging
import SwiftProtobuf

/// The `kiam.KiamService` gRPC service, with Go kiam's exact status messages (§2.2) so Go kiam
/// agents behave as they always did: `pod not found`, `no pod found`, `multiple running pods
/// found`, `forbidden by policy`, `role can't be empty`, STS errors as `Code: Message` — all with
/// code UNKNOWN, as grpc-go produced for kiam's plain errors.
struct KiamGRPCService: Kiam_KiamService.ServiceProtocol {
  let state: ServerState
  /// Every decision about an agent's question (pod, node, policy, credentials).
  let issuer: CredentialIssuer
  /// Set with `--prometheus-listen-addr`: its trouble is reported by `GetHealth`.
  let metricsEndpoint: MetricsEndpoint?
  /// `--min-credential-lifetime` and `--session-refresh`, told to agents with every credentials
  /// answer.
  let minimumLifetime: Duration
  let refreshMargin: Duration
  let logger: Logger

  static let podNotFound = "pod not found"
  static let noPodFound = "no pod found"
  static let multiplePods = "multiple running pods found"
  static let forbidden = "forbidden by policy"

  func getHealth(
    request: ServerRequest<Kiam_GetHealthRequest>, context: ServerContext
  ) async throws -> ServerResponse<Kiam_HealthStatus> {
    if let reason = state.notReadyReason {
      throw RPCError(code: .unavailable, message: "not ready: \(reason)")
    }
    // The message stays `ok` (Go kiam agents and probes compare it); what is degraded but does
    // not stop the server from answering goes in the response metadata.
    var metadata = Metadata()
    if let warning = metricsEndpoint?.status.warning { metadata.addString(warning, forKey: HealthMetadataKeys.warning) }
    return ServerResponse(message: Kiam_HealthStatus.with { $0.message = "ok" }, metadata: metadata)
  }

  func getPodRole(
    request: ServerRequest<Kiam_GetPodRoleRequest>, context: ServerContext
  ) async throws -> ServerResponse<Kiam_Role> {
    let ip = request.message.ip
    let pod: PodRecord
    do {
      pod = try await issuer.pod(ip: ip, agentToken: Self.agentToken(request.metadata))
    } catch {
      throw Self.rpcError(error, notFound: Self.podNotFound)
    }
    logger.debug("found role", metadata: ["pod.ip": "\(ip)", "pod.name": "\(pod.key)", "pod.iam.role": "\(pod.role)"])
    return ServerResponse(message: Kiam_Role.with { $0.name = pod.role }, metadata: Self.podMetadata(pod))
  }

  func getPodCredentials(
    request: ServerRequest<Kiam_GetPodCredentialsRequest>, context: ServerContext
  ) async throws -> ServerResponse<Kiam_Credentials> {
    let answer: (pod: PodRecord, identity: RoleIdentity, credentials: AWSCredentials)
    do {
      answer = try await issuer.credentials(
        ip: request.message.ip, requestedRole: request.message.role, agentToken: Self.agentToken(request.metadata))
    } catch {
      throw Self.rpcError(error, notFound: Self.noPodFound)
    }
    let issued = answer.credentials
    let message = Kiam_Credentials.with {
      $0.code = "Success"
      $0.type = "AWS-HMAC"
      $0.accessKeyID = issued.accessKeyID
      $0.secretAccessKey = issued.secretAccessKey
      $0.token = issued.sessionToken
      $0.expiration = RFC3339.format(epochSeconds: issued.expiration)
      $0.lastUpdated = RFC3339.format(epochSeconds: issued.lastUpdated)
    }
    var metadata = Self.podMetadata(answer.pod)
    metadata.addString(answer.identity.role.arn, forKey: PodMetadataKeys.roleARN)
    metadata.addString("\(Int64(minimumLifetime.seconds))", forKey: PodMetadataKeys.minimumLifetime)
    metadata.addString("\(Int64(refreshMargin.seconds))", forKey: PodMetadataKeys.refreshMargin)
    return ServerResponse(message: message, metadata: metadata)
  }

  /// kiam's status for each failure: code UNKNOWN with Go kiam's text where Go kiam had one.
  /// - Parameter notFound: `pod not found` (GetPodRole) or `no pod found` (GetPodCredentials).
  static func rpcError(_ failure: CredentialIssuer.Failure, notFound: String) -> RPCError {
    switch failure {
    case .notReady(let reason): RPCError(code: .unavailable, message: "server not ready: \(reason)")
    case .podNotFound: RPCError(code: .unknown, message: notFound)
    case .multiplePods: RPCError(code: .unknown, message: multiplePods)
    case .hostNetwork(let pod):
      RPCError(
        code: .unknown,
        message:
          "pod \(pod) uses the host network: it shares the node's IP, so kiam cannot identify it and gives it no role")
    case .unauthenticated(let message): RPCError(code: .unauthenticated, message: message)
    case .otherNode(let agent, let pod, let podNode):
      RPCError(code: .permissionDenied, message: "agent on node \(agent) may not act for pod \(pod) on node \(podNode)")
    case .forbidden: RPCError(code: .unknown, message: forbidden)
    case .invalidRole(let message), .credentials(let message): RPCError(code: .unknown, message: message)
    }
  }

  // MARK: Helpers

  /// Response metadata naming the pod (ignored by Go agents; our agent keys its cache on the UID
  /// so a reused IP never gets a previous pod's cached credentials).
  static func podMetadata(_ pod: PodRecord) -> Metadata {
    var metadata = Metadata()
    metadata.addString(pod.uid, forKey: PodMetadataKeys.uid)
    metadata.addString(pod.key, forKey: PodMetadataKeys.name)
    return metadata
  }

  /// The `authorization` header an agent with `--node-identity-token-file` sends.
  private static func agentToken(_ metadata: Metadata) -> String? {
    metadata[stringValues: AgentIdentityMetadata.key].first(where: { _ in true })
  }
}
