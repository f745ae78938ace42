import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import KiamShared
import Logging
import Prometheus
import SwiftProtobuf
import Synchronization

/// What the agent learns about the pod behind an IP.
struct PodIdentity: Sendable, Equatable {
  /// The `iam.amazonaws.com/role` annotation ("" when none).
  var role: String { didSet { connectionKey = Self.key(uid: uid, role: role) } }
  /// The pod's UID when the server names it (our server does, Go kiam's does not).
  var uid: String { didSet { connectionKey = Self.key(uid: uid, role: role) } }

  /// What a connection remembers about the pod it was checked for (kept, not built per request).
  private(set) var connectionKey: String

  init(role: String, uid: String) {
    self.role = role
    self.uid = uid
    connectionKey = Self.key(uid: uid, role: role)
  }

  private static func key(uid: String, role: String) -> String { "\(uid)\u{0}\(role)" }
}

/// Credentials from the server, with what the server told about them.
struct ServerCredentials: Sendable {
  var credentials: Kiam_Credentials
  var podUID: String
  /// The resolved role ARN, when the server says (for `AccountId` on the extended path).
  var roleARN: String?
  /// The server's `--min-credential-lifetime` and `--session-refresh` in seconds, when it says
  /// (our server does).
  var minimumLifetime: Double?
  var refreshMargin: Double?
}

/// An error talking to the server, with Go kiam's text (`rpc error: code = … desc = …`).
struct ServerCallError: Error, Sendable, CustomStringConvertible {
  let code: RPCError.Code
  let message: String
  /// Why no server answered, when the agent knows (a TLS failure, nothing reachable).
  var cause: String?
  var description: String { "rpc error: code = \(code.goName) desc = \(message)" + (cause.map { " (\($0))" } ?? "") }
  /// `forbidden by policy` (not retried).
  var isForbidden: Bool { message == "forbidden by policy" }
  /// The server has not seen the pod (yet).
  var isPodNotFound: Bool { message == "pod not found" || message == "no pod found" }
  /// The server could not be reached or answered too late.
  var isUnavailable: Bool { [.unavailable, .deadlineExceeded, .cancelled].contains(code) }
}

/// The agent's calls to kiam servers: deadlines on every call, the optional node-identity token
/// (re-read as it rotates), and go-grpc-prometheus client metrics.
struct KiamServerClient: Sendable {
  let client: Kiam_KiamService.Client<HTTP2ClientTransport.Posix>
  let metrics: KiamMetrics
  let tokenFile: String?
  /// Told the outcome of every call.
  var reachability = ServerReachability()
  /// Our TLS material, which knows the last handshake failure with a server.
  var tls: TLSMaterialStore?
  /// `--server-address`, for the cause of an outage.
  var address = ""

  func podRole(ip: String, timeout: Duration) async throws(ServerCallError) -> PodIdentity {
    try await call("GetPodRole", timeout: timeout) { options, metadata in
      try await client.getPodRole(Kiam_GetPodRoleRequest.with { $0.ip = ip }, metadata: metadata, options: options) {
        response in
        let message = try response.message
        return PodIdentity(role: message.name, uid: response.metadata.first(PodMetadataKeys.uid) ?? "")
      }
    }
  }

  func podCredentials(ip: String, role: String, timeout: Duration) async throws(ServerCallError) -> ServerCredentials {
    try await call("GetPodCredentials", timeout: timeout) { options, metadata in
      let request = Kiam_GetPodCredentialsRequest.with {
        $0.ip = ip
        $0.role = role
      }
      return try await client.getPodCredentials(request, metadata: metadata, options: options) { response in
        ServerCredentials(
          credentials: try response.message, podUID: response.metadata.first(PodMetadataKeys.uid) ?? "",
          roleARN: response.metadata.first(PodMetadataKeys.roleARN),
          minimumLifetime: response.metadata.first(PodMetadataKeys.minimumLifetime).flatMap(Double.init),
          refreshMargin: response.metadata.first(PodMetadataKeys.refreshMargin).flatMap(Double.init))
      }
    }
  }

  /// The server's health message (`ok`) and the warnings it added (our server only).
  func health(timeout: Duration) async throws(ServerCallError) -> (message: String, warnings: [String]) {
    try await call("GetHealth", timeout: timeout) { options, metadata in
      try await client.getHealth(Kiam_GetHealthRequest(), metadata: metadata, options: options) { response in
        (try response.message.message, HealthMetadataKeys.warnings(in: response.metadata))
      }
    }
  }

  private func call<T: Sendable>(
    _ method: String, timeout: Duration, _ body: (CallOptions, Metadata) async throws -> T
  ) async throws(ServerCallError) -> T {
    let counters = metrics.grpc(.client, service: "kiam.KiamService", method: method)
    counters.started.increment()
    counters.messagesSent.increment()
    var options = CallOptions.defaults
    options.timeout = max(timeout, .milliseconds(1))
    options.waitForReady = true
    var metadata = Metadata()
    if let token = nodeToken() { metadata.addString("Bearer \(token)", forKey: "authorization") }
    do {
      let result = try await body(options, metadata)
      counters.messagesReceived.increment()
      counters.handled(code: "OK").increment()
      reachability.answered()
      return result
    } catch let error as RPCError {
      counters.handled(code: error.code.goName).increment()
      var failure = ServerCallError(code: error.code, message: error.message)
      if failure.isUnavailable { failure.cause = outageCause() }
      switch error.code {
      case .unavailable:
        reachability.failed(cause: failure.description)
      case .deadlineExceeded where timeout >= .milliseconds(500):
        // A call given little time (the end of a request's budget) says nothing about the servers.
        reachability.failed(cause: failure.description)
      case .deadlineExceeded, .cancelled:
        break
      default:
        reachability.answered()
      }
      throw failure
    } catch {
      counters.handled(code: "Unknown").increment()
      throw ServerCallError(code: .unknown, message: KiamError.describe(error))
    }
  }

  /// A call found no server: a recent TLS failure names why, else nothing answered at all.
  private func outageCause() -> String {
    if let failure = tls?.recentPeerFailure() { return "TLS \(failure.reason): \(failure.message)" }
    return "no kiam server reachable at \(address)"
  }

  private func nodeToken() -> String? {
    guard let tokenFile else { return nil }
    return (try? String(contentsOfFile: tokenFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

extension Metadata {
  func first(_ key: String) -> String? {
    self[stringValues: key].first(where: { _ in true })
  }
}
