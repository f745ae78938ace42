import GRPCCore
import KiamShared
import Logging
import NIOCore
import NIOHTTP1
import Prometheus

/// The EC2 metadata API for the pods of this node.
///
/// Warm requests (role list and credentials of a pod the agent already knows) are answered on
/// the event loop from ``PodCredentialCache`` with no network I/O. Everything else goes to the
/// ``WorkQueue``: asking the server (one call with the remaining budget of 900 ms, the server
/// itself waits for pods it has not seen yet), `/health`, and allow-listed pass-through.
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
  let lookups = IdentityLookups()

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
      let connection = request.connection
      return deferred("roleName", started, eventLoop) {
        await self.coldRoleList(ip: ip, connection: connection, started: started)
      }
    case .credentials(let role, let extended):
      guard request.method == .GET || request.method == .HEAD else { return .immediate(methodNotAllowed) }
      let (verified, kept) = request.connection.remembered
      let remembered = verified == nil ? nil : kept as? WarmMemo
      var memo = remembered
      if let warm = cache.warmCredentials(ip: ip, role: role, wallNow: settings.clock.nowPrecise(), connectionPod: verified, memo: &memo) {
        if verified != warm.identity.connectionKey { request.connection.verified = warm.identity.connectionKey }
        if memo !== remembered { request.connection.memo = memo }
        return .immediate(record("credentials", started, credentialsResponse(warm.credentials, extended: extended)))
      }
      let connection = request.connection
      return deferred("credentials", started, eventLoop) {
        await self.coldCredentials(ip: ip, role: role, extended: extended, connection: connection, started: started)
      }
    case .forbiddenCredentials:
      return .immediate(
        record("proxy", started, .error(.notFound, "credentials and token paths are never passed to the node's metadata service")))
    case .malformed(let problem):
      return .immediate(record("proxy", started, .error(.badRequest, "bad request target: \(problem)")))
    case .other(let path):
      guard settings.allowRoutes.matches(path) else {
        metrics.metrics.proxyRequestsBlocked.increment()
        return .immediate(
          record("proxy", started, .error(.notFound, "request blocked by allow-route-regexp \(JSON.quote(settings.allowRoutes.pattern)): \(path)")))
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

  // MARK: Cold paths

  private func remaining(_ started: ContinuousClock.Instant) -> Duration {
    settings.requestBudget - (ContinuousClock.now - started)
  }

  /// Asks the server who `ip` is, within the request budget (one lookup per IP at a time).
  private func lookupIdentity(ip: String, started: ContinuousClock.Instant) async -> Result<PodIdentity, ServerCallError> {
    await lookups.lookup(ip: ip) { await self.askIdentity(ip: ip, started: started) }
  }

  private func askIdentity(ip: String, started: ContinuousClock.Instant) async -> Result<PodIdentity, ServerCallError> {
    var last = ServerCallError(code: .deadlineExceeded, message: "context deadline exceeded")
    attempts: while remaining(started) > .milliseconds(20) {
      let attempt = ContinuousClock.now
      do {
        let identity = try await server.podRole(ip: ip, timeout: remaining(started))
        switch cache.confirm(ip: ip, identity: identity) {
        case .accepted:
          return .success(identity)
        case .conflict:
          // A new pod behind this IP that the server does not know yet: wait for it, within budget.
          last = ServerCallError(code: .unknown, message: Self.podChanged)
          guard remaining(started) > .milliseconds(150) else { break attempts }
          try? await Task.sleep(for: .milliseconds(100))
          continue attempts
        }
      } catch {
        last = error
        // A server that answers "not found" at once has not waited for the pod (Go kiam does
        // not): ask again shortly, within budget. Ours already waited, so its answer stands.
        let answeredAtOnce = ContinuousClock.now - attempt < .milliseconds(100)
        guard error.isPodNotFound, answeredAtOnce, remaining(started) > .milliseconds(150) else { break attempts }
        try? await Task.sleep(for: .milliseconds(50))
      }
    }
    if last.isPodNotFound { cache.forget(ip: ip) }
    return .failure(last)
  }

  private func coldRoleList(ip: String, connection: HTTPConnectionContext, started: ContinuousClock.Instant) async -> HTTPResponse {
    // No server answers (``ServerReachability``): the same pod's last identity, at once.
    if server.reachability.isUnreachable, let known = cache.outageIdentity(ip: ip) {
      metrics.servedDuringOutage("roleName")
      return roleListResponse(known)
    }
    switch await lookupIdentity(ip: ip, started: started) {
    case .success(let identity):
      connection.verified = identity.connectionKey
      return roleListResponse(identity)
    case .failure(let error) where error.isUnavailable:
      // Server unreachable: the last identity of this same pod still names its role.
      if let known = cache.outageIdentity(ip: ip) {
        logger.warning("server unavailable, serving the known role", metadata: ["pod.ip": "\(ip)", "error": "\(error)"])
        return roleListResponse(known)
      }
      metrics.metrics.findRoleErrors("roleName").increment()
      return .error(.internalServerError, error.description)
    case .failure(let error):
      metrics.metrics.findRoleErrors("roleName").increment()
      return .error(.internalServerError, error.description)
    }
  }

  private func coldCredentials(
    ip: String, role: String, extended: Bool, connection: HTTPConnectionContext, started: ContinuousClock.Instant
  ) async -> HTTPResponse {
    let wallNow = settings.clock.nowPrecise()
    func failure(_ error: ServerCallError) -> HTTPResponse {
      // Server unreachable: credentials still valid for this same pod are better than none.
      if error.isUnavailable, let cached = cache.outageCredentials(ip: ip, role: role, wallNow: wallNow) {
        logger.warning("server unavailable, serving cached credentials", metadata: ["pod.ip": "\(ip)", "error": "\(error)"])
        return credentialsResponse(cached, extended: extended)
      }
      metrics.metrics.credentialFetchErrors("credentials").increment()
      if error.isForbidden { return .error(.internalServerError, "error fetching credentials: forbidden by policy") }
      if error.isPodNotFound { return .error(.internalServerError, "error fetching credentials: no pod found") }
      return .error(.internalServerError, "error fetching credentials: \(error)")
    }
    // No server answers (``ServerReachability``): credentials still valid for the same pod, at
    // once, instead of waiting the budget for a server that is not there.
    if server.reachability.isUnreachable, let known = cache.outageIdentity(ip: ip), Self.sameRole(role, known.role),
      let cached = cache.outageCredentials(ip: ip, role: role, wallNow: wallNow)
    {
      metrics.servedDuringOutage("credentials")
      return credentialsResponse(cached, extended: extended)
    }
    let identity: PodIdentity
    if let trusted = cache.trustedIdentity(ip: ip, connectionPod: connection.verified) {
      identity = trusted
    } else {
      switch await lookupIdentity(ip: ip, started: started) {
      case .success(let found):
        identity = found
        connection.verified = found.connectionKey
      case .failure(let error) where error.isUnavailable && cache.outageIdentity(ip: ip) != nil:
        identity = cache.outageIdentity(ip: ip)!
      case .failure(let error): return failure(error)
      }
    }
    guard !identity.role.isEmpty else {
      metrics.metrics.credentialFetchErrors("credentials").increment()
      return .error(.notFound, "error fetching credentials: rpc error: code = Unknown desc = role can't be empty")
    }
    // Not the pod's role: 404, so SDKs list the role again (403 would strand them).
    guard Self.sameRole(role, identity.role) else {
      return .error(.notFound, "role \(JSON.quote(role)) is not the pod's role")
    }
    // The server has just confirmed the pod: credentials the agent holds for this same pod need
    // no second call (new connections from callers without a neighbour entry come here).
    if let held = cache.heldCredentials(ip: ip, role: role, wallNow: settings.clock.nowPrecise(), pod: identity.connectionKey) {
      return credentialsResponse(held, extended: extended)
    }
    do {
      let issued = try await server.podCredentials(ip: ip, role: role, timeout: remaining(started))
      let cached = CachedCredentials(issued, now: settings.clock.nowPrecise())
      cache.store(ip: ip, role: role, credentials: cached, podUID: issued.podUID)
      return credentialsResponse(cached, extended: extended)
    } catch {
      if error.isPodNotFound { cache.forget(ip: ip) }
      return failure(error)
    }
  }

  /// Why a reused IP gets no answer while the server still names the previous pod.
  static let podChanged = "the pod behind this IP changed and the server does not know the new pod yet"

  /// `myrole`, `/myrole` and `myrole/` name the same role.
  static func sameRole(_ a: String, _ b: String) -> Bool {
    func normal(_ s: String) -> Substring {
      var t = s[...]
      if t.hasPrefix("/") { t = t.dropFirst() }
      if t.hasSuffix("/") { t = t.dropLast() }
      return t
    }
    return normal(a) == normal(b)
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
      case .failed(let error)?: return .error(.serviceUnavailable, "not ready: the iptables rule is not in place: \(error)")
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
      let answer = try await upstream.send(method: request.method, pathAndQuery: target, headers: headers, body: request.body)
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

extension String {
  fileprivate func trimmingCharacters() -> String {
    var s = self[...]
    while s.first?.isWhitespace == true { s = s.dropFirst() }
    while s.last?.isWhitespace == true { s = s.dropLast() }
    return String(s)
  }
}
