import KiamShared
import Logging

/// The server's one path from an agent's question to an answer: the pod behind the IP (waiting
/// for the watch up to `podWait`), the agent's node when node identity is required, the
/// namespace policy (``AssumeRolePolicy``), then credentials from the ``CredentialsCache``.
///
/// It decides; ``KiamGRPCService`` only maps its ``Failure`` to kiam's status messages.
struct CredentialIssuer: Sendable {
  let state: ServerState
  let credentials: any CredentialsProvider
  let events: any EventSink
  /// Set with `--require-node-identity`.
  let identity: (any AgentIdentityVerifier)?
  let podWait: Duration
  let logger: Logger

  /// Why no answer was given.
  enum Failure: Error, Sendable {
    /// The server cannot answer yet (not synced, base ARN unknown): `reason` says why.
    case notReady(String)
    case podNotFound
    case multiplePods
    /// The pod shares the node's IP: it cannot be told apart.
    case hostNetwork(pod: String)
    /// `--require-node-identity`: the agent proved no node, or another node than the pod's.
    case unauthenticated(String)
    case otherNode(agent: String, pod: String, podNode: String)
    /// The namespace policy refused, or the role could not be resolved (`message`).
    case forbidden
    case invalidRole(String)
    /// STS (through the cache) gave no credentials: `Code: Message`.
    case credentials(String)
  }

  /// The ready resolver of role names, or why there is none yet.
  func resolver() throws(Failure) -> RoleARNResolver {
    if let reason = state.notReadyReason { throw .notReady(reason) }
    guard let resolver = state.resolver else { throw .notReady("role base ARN unknown") }
    return resolver
  }

  /// The pod behind `ip`, waiting for the watch up to `podWait`, bound to the agent's node.
  /// - Parameter agentToken: The agent's service-account token, when it sent one.
  func pod(ip: String, agentToken: String?) async throws(Failure) -> PodRecord {
    _ = try resolver()
    let agentNode = try await verifiedAgentNode(agentToken)
    switch await state.pods.lookup(ip: ip, wait: podWait) {
    case .found(let pod):
      if let agentNode, pod.nodeName != agentNode {
        logger.warning(
          "agent asked for a pod on another node",
          metadata: ["agent.node": "\(agentNode)", "pod.name": "\(pod.key)", "pod.node": "\(pod.nodeName)"])
        throw .otherNode(agent: agentNode, pod: pod.key, podNode: pod.nodeName)
      }
      return pod
    case .notFound:
      throw .podNotFound
    case .multiple(let pods):
      logger.warning("multiple running pods claim one IP", metadata: ["pod.ip": "\(ip)", "pods": "\(pods.map(\.key))"])
      throw .multiplePods
    case .hostNetwork(let pod):
      throw .hostNetwork(pod: pod.key)
    case .notReady:
      throw .notReady("pod cache not synced")
    }
  }

  /// Credentials for `requestedRole` if the pod behind `ip` may have them.
  func credentials(ip: String, requestedRole: String, agentToken: String?) async throws(Failure) -> (
    pod: PodRecord, identity: RoleIdentity, credentials: AWSCredentials
  ) {
    let resolver = try resolver()
    let pod = try await pod(ip: ip, agentToken: agentToken)
    let decision: PolicyDecision
    do {
      decision = try AssumeRolePolicy(resolver: resolver).evaluate(
        pod: pod, requestedRole: requestedRole, namespace: state.namespaces.namespace(pod.namespace))
    } catch let error as KiamError {
      throw .invalidRole(error.message)
    } catch {
      throw .invalidRole(KiamError.describe(error))
    }
    guard case .allowed(let role) = decision else {
      if case .forbidden(let explanation) = decision {
        logger.error(
          "forbidden by policy",
          metadata: [
            "pod.name": "\(pod.key)", "pod.ip": "\(ip)", "policy.explanation": "\(explanation)",
            "requested.role": "\(requestedRole)",
          ])
        events.warning(
          pod: pod, reason: EventReason.roleForbidden,
          message: "failed assuming role \"\(requestedRole)\": \(explanation)")
      }
      throw .forbidden
    }
    let identity = RoleIdentity(role: role, sessionNameAnnotation: pod.sessionName, externalID: pod.externalID)
    do {
      return (pod, identity, try await credentials.credentials(for: identity))
    } catch {
      let text = (error as? CredentialsError)?.description ?? KiamError.describe(error)
      logger.error(
        "error retrieving credentials",
        metadata: ["pod.name": "\(pod.key)", "role": "\(identity.role.arn)", "error": "\(text)"])
      events.warning(pod: pod, reason: EventReason.credentialError, message: "failed retrieving credentials: \(text)")
      throw .credentials(text)
    }
  }

  private func verifiedAgentNode(_ header: String?) async throws(Failure) -> String? {
    guard let identity else { return nil }
    guard let header, header.hasPrefix("Bearer "), header.count > 7 else {
      throw .unauthenticated(
        "node identity required (--require-node-identity): the agent sent no service-account token")
    }
    do {
      return try await identity.nodeName(token: String(header.dropFirst(7)))
    } catch let error as AgentIdentityError {
      throw .unauthenticated(error.message)
    } catch {
      throw .unauthenticated(KiamError.describe(error))
    }
  }
}
