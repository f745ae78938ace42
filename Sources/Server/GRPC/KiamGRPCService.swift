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
  let credentials: any CredentialsProvider
  let events: any EventSink
  /// Set with `--require-node-identity`.
  let identity: (any AgentIdentityVerifier)?
  /// Set with `--prometheus-listen-addr`: its trouble is reported by `GetHealth`.
  let metricsEndpoint: MetricsEndpoint?
  let podWait: Duration
  /// `--min-credential-lifetime` and `--session-refresh`, told to agents with every credentials
  /// answer.
  let minimumLifetime: Duration
  let refreshMargin: Duration
  let defaultSession: String
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
    _ = try readyResolver()
    let ip = request.message.ip
    let pod = try await findPod(ip: ip, notFound: Self.podNotFound, metadata: request.metadata)
    logger.debug("found role", metadata: ["pod.ip": "\(ip)", "pod.name": "\(pod.key)", "pod.iam.role": "\(pod.role)"])
    return ServerResponse(message: Kiam_Role.with { $0.name = pod.role }, metadata: Self.podMetadata(pod))
  }

  func getPodCredentials(
    request serverRequest: ServerRequest<Kiam_GetPodCredentialsRequest>, context: ServerContext
  ) async throws -> ServerResponse<Kiam_Credentials> {
    let request = serverRequest.message
    let resolver = try readyResolver()
    let pod = try await findPod(ip: request.ip, notFound: Self.noPodFound, metadata: serverRequest.metadata)
    let policy = AssumeRolePolicy(resolver: resolver)
    let decision: PolicyDecision
    do {
      decision = try policy.evaluate(
        pod: pod, requestedRole: request.role, namespace: state.namespaces.namespace(pod.namespace))
    } catch let error as KiamError {
      throw RPCError(code: .unknown, message: error.message)
    }
    let role: ResolvedRole
    switch decision {
    case .forbidden(let explanation):
      logger.error(
        "forbidden by policy",
        metadata: [
          "pod.name": "\(pod.key)", "pod.ip": "\(request.ip)", "policy.explanation": "\(explanation)",
          "requested.role": "\(request.role)",
        ])
      events.warning(
        pod: pod, reason: EventReason.roleForbidden, message: "failed assuming role \"\(request.role)\": \(explanation)")
      throw RPCError(code: .unknown, message: Self.forbidden)
    case .allowed(let allowed):
      role = allowed
    }
    let identity = RoleIdentity(role: role, sessionNameAnnotation: pod.sessionName, externalID: pod.externalID)
    do {
      let issued = try await credentials.credentials(for: identity)
      let message = Kiam_Credentials.with {
        $0.code = "Success"
        $0.type = "AWS-HMAC"
        $0.accessKeyID = issued.accessKeyID
        $0.secretAccessKey = issued.secretAccessKey
        $0.token = issued.sessionToken
        $0.expiration = RFC3339.format(epochSeconds: issued.expiration)
        $0.lastUpdated = RFC3339.format(epochSeconds: issued.lastUpdated)
      }
      var metadata = Self.podMetadata(pod)
      metadata.addString(identity.role.arn, forKey: PodMetadataKeys.roleARN)
      metadata.addString("\(Int64(minimumLifetime.seconds))", forKey: PodMetadataKeys.minimumLifetime)
      metadata.addString("\(Int64(refreshMargin.seconds))", forKey: PodMetadataKeys.refreshMargin)
      return ServerResponse(message: message, metadata: metadata)
    } catch {
      let text = (error as? CredentialsError)?.description ?? KiamError.describe(error)
      logger.error(
        "error retrieving credentials",
        metadata: ["pod.name": "\(pod.key)", "role": "\(identity.role.arn)", "error": "\(text)"])
      events.warning(pod: pod, reason: EventReason.credentialError, message: "failed retrieving credentials: \(text)")
      throw RPCError(code: .unknown, message: text)
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

  private func readyResolver() throws -> RoleARNResolver {
    if let reason = state.notReadyReason {
      throw RPCError(code: .unavailable, message: "server not ready: \(reason)")
    }
    guard let resolver = state.resolver else {
      throw RPCError(code: .unavailable, message: "server not ready: role base ARN unknown")
    }
    return resolver
  }

  /// Finds the pod for `ip`, waiting for the watch up to the bound, and enforces node binding.
  private func findPod(ip: String, notFound: String, metadata: Metadata) async throws -> PodRecord {
    let agentNode = try await verifiedAgentNode(metadata)
    switch await state.pods.lookup(ip: ip, wait: podWait) {
    case .found(let pod):
      if let agentNode, pod.nodeName != agentNode {
        logger.warning(
          "agent asked for a pod on another node",
          metadata: ["agent.node": "\(agentNode)", "pod.name": "\(pod.key)", "pod.node": "\(pod.nodeName)"])
        throw RPCError(
          code: .permissionDenied,
          message: "agent on node \(agentNode) may not act for pod \(pod.key) on node \(pod.nodeName)")
      }
      return pod
    case .notFound:
      throw RPCError(code: .unknown, message: notFound)
    case .multiple(let pods):
      logger.warning(
        "multiple running pods claim one IP", metadata: ["pod.ip": "\(ip)", "pods": "\(pods.map(\.key))"])
      throw RPCError(code: .unknown, message: Self.multiplePods)
    case .hostNetwork(let pod):
      throw RPCError(
        code: .unknown,
        message: "pod \(pod.key) uses the host network: it shares the node's IP, so kiam cannot identify it and gives it no role")
    case .notReady:
      throw RPCError(code: .unavailable, message: "server not ready: pod cache not synced")
    }
  }

  private func verifiedAgentNode(_ metadata: Metadata) async throws -> String? {
    guard let identity else { return nil }
    let header = metadata[stringValues: AgentIdentityMetadata.key].first(where: { _ in true })
    guard let header, header.hasPrefix("Bearer "), header.count > 7 else {
      throw RPCError(
        code: .unauthenticated,
        message: "node identity required (--require-node-identity): the agent sent no service-account token")
    }
    do {
      return try await identity.nodeName(token: String(header.dropFirst(7)))
    } catch let error as AgentIdentityError {
      throw RPCError(code: .unauthenticated, message: error.message)
    }
  }
}
