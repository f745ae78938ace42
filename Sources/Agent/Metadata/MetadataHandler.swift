import GRPCCore
import KiamShared
import Logging
import NIOCore
import NIOHTTP1
import Prometheus

/// The EC2 metadata API for the pods of this node.
///
/// Each request is route → answer → response: ``MetadataRoute`` names what is asked,
/// ``PodCredentialCache`` answers it (at once on the event loop when it can, the warm path; else
/// through ``PodCredentialCache/answer(_:ip:connectionPod:deadline:)`` on the ``WorkQueue``,
/// within the request budget of 900 ms), and this type turns the answer into kiam's response,
/// metrics and log line. `/health` and the allow-listed pass-through are answered here.
struct MetadataHandler: HTTPRequestHandler {
  let settings: MetadataSettings
  let cache: PodCredentialCache
  let tokens: IMDSv2Tokens
  let server: KiamServerClient
  let upstream: InstanceMetadataClient
  let work: WorkQueue
  let metrics: AgentMetrics
  /// Set with `--prometheus-listen-addr`: its trouble is reported by `/health?deep`.
  let metricsEndpoint: MetricsEndpoint?
  /// Set with `--iptables`: `/health?deep` is not ready until the rule is in place.
  var iptables: IPTablesStatus? = nil
  let logger: Logger

  func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult {
    let started = ContinuousClock.now
    guard let ip = callerIP(request) else {
      return .immediate(.error(.badRequest, "cannot determine the caller's address"))
    }
    let route = MetadataRoute.parse(uri: request.uri)
    switch route {
    case .ping:
      return .immediate(.text(.ok, "pong"))
    case .redirect(let location):
      return .immediate(HTTPResponse(status: .movedPermanently, headers: ["Location": location]))
    case .token:
      return .immediate(issueToken(request, ip: ip))
    case .health:
      let deep = request.queryValue("deep").map { !$0.isEmpty } ?? false
      return deferred("health", started, eventLoop) { await self.health(deep: deep) }
    default:
      break
    }
    if let rejection = checkSession(request, ip: ip, route: route, started: started) { return .immediate(rejection) }
    switch route {
    case .roleList:
      guard request.method == .GET || request.method == .HEAD else { return .immediate(methodNotAllowed) }
      if let identity = cache.trustedIdentity(ip: ip, connectionPod: request.connection.verified) {
        request.connection.verified = identity.connectionKey
        return .immediate(record("roleName", started, roleListResponse(identity)))
      }
      return answerLater(.roleName, ip: ip, request: request, started: started, eventLoop: eventLoop)
    case .credentials(let role, let extended):
      guard request.method == .GET || request.method == .HEAD else { return .immediate(methodNotAllowed) }
      let (verified, kept) = request.connection.remembered
      let remembered = verified == nil ? nil : kept as? WarmMemo
      var memo = remembered
      if let warm = cache.warmCredentials(
        ip: ip, role: role, wallNow: settings.clock.nowPrecise(), connectionPod: verified, memo: &memo)
      {
        if verified != warm.identity.connectionKey { request.connection.verified = warm.identity.connectionKey }
        if memo !== remembered { request.connection.memo = memo }
        return .immediate(record("credentials", started, credentialsResponse(warm.credentials, extended: extended)))
      }
      return answerLater(
        .credentials(role: role), ip: ip, request: request, extended: extended, started: started, eventLoop: eventLoop)
    case .forbiddenCredentials:
      return .immediate(
        record(
          "proxy", started,
          .error(.notFound, "credentials and token paths are never passed to the node's metadata service")))
    case .malformed(let problem):
      return .immediate(record("proxy", started, .error(.badRequest, "bad request target: \(problem)")))
    case .other(let path):
      guard settings.allowRoutes.matches(path) else {
        metrics.metrics.proxyRequestsBlocked.increment()
        return .immediate(
          record(
            "proxy", started,
            .error(
              .notFound, "request blocked by allow-route-regexp \(JSON.quote(settings.allowRoutes.pattern)): \(path)")))
      }
      // The bytes the allow-list checked, encoded again: never the raw target.
      let target = PercentEncoding.encodePath(path) + (request.query.map { "?" + $0 } ?? "")
      return deferred("proxy", started, eventLoop) { await self.proxy(request, target: target) }
    default:
      return .immediate(.error(.notFound, "not found"))
    }
  }

  // MARK: Caller and session

  private func callerIP(_ request: HTTPRequest) -> String? {
    if settings.allowIPQuery, let override = request.queryValue("ip"), !override.isEmpty {
      return CanonicalIP.normalize(override)
    }
    return request.connection.remoteIP
  }

  private var methodNotAllowed: HTTPResponse { .error(.methodNotAllowed, "method not allowed") }

  /// `PUT /latest/api/token`: a token for this caller. Never 5xx.
  private func issueToken(_ request: HTTPRequest, ip: String) -> HTTPResponse {
    guard request.method == .PUT else { return methodNotAllowed }
    // EC2 refuses token requests that went through a proxy.
    if request.headers.contains(name: "X-Forwarded-For") { return .error(.forbidden, "forbidden") }
    guard let text = request.headers.first(name: "X-aws-ec2-metadata-token-ttl-seconds"),
      let ttl = IMDSv2Tokens.ttl(header: text)
    else {
      return .error(.badRequest, "X-aws-ec2-metadata-token-ttl-seconds must be between 1 and 21600")
    }
    var response = HTTPResponse.text(.ok, tokens.issue(ip: ip, ttl: ttl, now: settings.clock.now()))
    response.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: String(ttl))
    return response
  }

  /// Checks an IMDSv2 session token when present (or required).
  ///
  /// With `--require-imdsv2` a request without a valid token is refused with 401, as EC2 does.
  /// Without it, a token that does not check (expired, another caller's, or not from this node's
  /// agents) is ignored and the request is served as IMDSv1: Go kiam never looked at tokens, and a
  /// pod it would have served must not fail here (the Go SDK v1 does not retry a 401). Either way
  /// the rejection is counted and logged.
  private func checkSession(
    _ request: HTTPRequest, ip: String, route: MetadataRoute, started: ContinuousClock.Instant
  ) -> HTTPResponse? {
    let reason: String
    if let token = request.headers.first(name: "X-aws-ec2-metadata-token") {
      let check = tokens.check(token, ip: ip, now: settings.clock.now())
      if check == .valid { return nil }
      reason = check.rawValue
    } else {
      guard settings.requireIMDSv2 else { return nil }
      reason = "missing"
    }
    let refused = settings.requireIMDSv2
    metrics.tokenRejected(reason: reason, refused: refused).increment()
    let metadata: Logger.Metadata = [
      "addr": "\(ip)", "method": "\(request.method)", "path": "\(request.path)", "token": "\(reason)",
    ]
    guard refused else {
      logger.debug("IMDSv2 session token not valid, served as IMDSv1", metadata: metadata)
      return nil
    }
    let text =
      switch reason {
      case "missing": "IMDSv2 session token required"
      case "expired": "session token expired"
      default: "invalid session token"
      }
    return record(route.handlerName, started, .error(.unauthorized, text), detail: metadata)
  }

  // MARK: Responses

  private func roleListResponse(_ identity: PodIdentity) -> HTTPResponse {
    if identity.role.isEmpty {
      metrics.metrics.emptyRole("roleName").increment()
      return .error(.notFound, "empty role")
    }
    // Exactly one name, no trailing newline (botocore uses the whole body as the name).
    return .text(.ok, identity.role)
  }

  private func credentialsResponse(_ cached: CachedCredentials, extended: Bool) -> HTTPResponse {
    extended ? cached.extendedResponse : cached.response
  }

  private func record(
    _ handler: String, _ started: ContinuousClock.Instant, _ response: HTTPResponse, detail: Logger.Metadata = [:]
  ) -> HTTPResponse {
    metrics.responded(handler, code: Int(response.status.code), elapsed: ContinuousClock.now - started)
    if response.status.code >= 400 {
      logger.info(
        "processed request",
        metadata: detail.merging(["handler": "\(handler)", "status": "\(response.status.code)"]) { $1 })
    }
    return response
  }

  private func deferred(
    _ handler: String, _ started: ContinuousClock.Instant, _ eventLoop: any EventLoop,
    _ work: @escaping @Sendable () async -> HTTPResponse
  ) -> HTTPResponseResult {
    .deferred(self.work.submit(on: eventLoop, work).map { self.record(handler, started, $0) })
  }

  // MARK: Answers the cache gives later

  /// Asks the cache on the work queue, within what is left of the request budget.
  private func answerLater(
    _ question: PodCredentialCache.Question, ip: String, request: HTTPRequest, extended: Bool = false,
    started: ContinuousClock.Instant, eventLoop: any EventLoop
  ) -> HTTPResponseResult {
    let connection = request.connection
    let connectionPod = connection.verified
    return deferred(Self.handlerName(question), started, eventLoop) {
      let answer = await self.cache.answer(
        question, ip: ip, connectionPod: connectionPod, deadline: started + self.settings.requestBudget)
      if let checked = answer.checkedPod { connection.verified = checked.connectionKey }
      return self.response(to: answer, for: question, ip: ip, extended: extended)
    }
  }

  /// kiam's `handler` label: `roleName` or `credentials`.
  private static func handlerName(_ question: PodCredentialCache.Question) -> String {
    question == .roleName ? "roleName" : "credentials"
  }

  /// kiam's response, metrics and log line for the cache's answer.
  private func response(
    to answer: PodCredentialCache.Answer, for question: PodCredentialCache.Question, ip: String, extended: Bool
  ) -> HTTPResponse {
    let handler = Self.handlerName(question)
    switch answer.outage {
    case .answeredAtOnce?:
      metrics.servedDuringOutage(handler)
    case .afterFailure(let error)?:
      let served = handler == "roleName" ? "the known role" : "cached credentials"
      logger.warning("server unavailable, serving \(served)", metadata: ["pod.ip": "\(ip)", "error": "\(error)"])
    case nil:
      break
    }
    switch answer.outcome {
    case .identity(let identity):
      return roleListResponse(identity)
    case .credentials(let cached):
      return credentialsResponse(cached, extended: extended)
    case .emptyRole:
      metrics.metrics.credentialFetchErrors(handler).increment()
      return .error(.notFound, "error fetching credentials: rpc error: code = Unknown desc = role can't be empty")
    case .notThePodsRole:
      // 404, so SDKs list the role again (403 would strand them).
      guard case .credentials(let role) = question else { return .error(.notFound, "not the pod's role") }
      return .error(.notFound, "role \(JSON.quote(role)) is not the pod's role")
    case .failed(let error) where question == .roleName:
      metrics.metrics.findRoleErrors(handler).increment()
      return .error(.internalServerError, error.description)
    case .failed(let error):
      metrics.metrics.credentialFetchErrors(handler).increment()
      if error.isForbidden { return .error(.internalServerError, "error fetching credentials: forbidden by policy") }
      if error.isPodNotFound { return .error(.internalServerError, "error fetching credentials: no pod found") }
      return .error(.internalServerError, "error fetching credentials: \(error)")
    }
  }

  /// `/health`: the node's instance id from the real metadata service; with `?deep`, first the
  /// iptables rule (503 until it is in place, with `--iptables`) and the server's `GetHealth`. What is degraded without stopping credentials (the metrics endpoint,
  /// the server's own warnings) is added as `warning:` lines after the instance id and as
  /// `X-Kiam-Warning` headers, with status 200: a liveness probe must not restart a working agent.
  private func health(deep: Bool) async -> HTTPResponse {
    var warnings: [String] = []
    if deep {
      switch iptables?.current {
      case .pending?: return .error(.serviceUnavailable, "not ready: the iptables rule is not in place yet")
      case .failed(let error)?:
        return .error(.serviceUnavailable, "not ready: the iptables rule is not in place: \(error)")
      case .inPlace?, nil: break
      }
      do {
        let status = try await server.health(timeout: settings.requestBudget)
        guard status.message == "ok" else { return .error(.internalServerError, "server health: \(status.message)") }
        warnings += status.warnings.map { "server: \($0)" }
      } catch {
        return .error(.internalServerError, error.description)
      }
      if let warning = metricsEndpoint?.status.warning { warnings.append(warning) }
    }
    let instanceID: String
    do {
      instanceID = try await upstream.get("/latest/meta-data/instance-id")
    } catch {
      return .error(.internalServerError, "couldn't read metadata response: \(KiamError.describe(error))")
    }
    // One line each, whatever the server sent.
    let lines = warnings.map { String($0.map { $0.isNewline || $0.asciiValue.map { $0 < 0x20 } == true ? " " : $0 }) }
    var response = HTTPResponse.text(.ok, ([instanceID] + lines.map { "warning: \($0)" }).joined(separator: "\n"))
    for line in lines { response.headers.add(name: "X-Kiam-Warning", value: line) }
    return response
  }

  static let hopByHop: Set<String> = [
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
    "transfer-encoding", "upgrade", "x-forwarded-for", "host", "content-length", "x-aws-ec2-metadata-token",
  ]

  /// Passes an allow-listed request to the real metadata service, with the agent's own session
  /// token and without `X-Forwarded-For`; upstream failure is 502.
  private func proxy(_ request: HTTPRequest, target: String) async -> HTTPResponse {
    var headers = HTTPHeaders()
    for (name, value) in request.headers where !Self.hopByHop.contains(name.lowercased()) {
      headers.add(name: name, value: value)
    }
    do {
      let answer = try await upstream.send(
        method: request.method, pathAndQuery: target, headers: headers, body: request.body)
      var responseHeaders = HTTPHeaders()
      for (name, value) in answer.headers where !Self.hopByHop.contains(name.lowercased()) {
        responseHeaders.add(name: name, value: value)
      }
      return HTTPResponse(status: answer.status, headers: responseHeaders, body: answer.body)
    } catch {
      logger.warning("proxy error", metadata: ["path": "\(request.path)", "error": "\(KiamError.describe(error))"])
      return HTTPResponse(status: .badGateway)
    }
  }
}
