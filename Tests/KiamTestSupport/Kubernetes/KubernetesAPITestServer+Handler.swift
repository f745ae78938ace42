import Foundation
import NIOCore
import NIOHTTP1

extension KubernetesAPITestServer {
  enum Reply {
    case json(HTTPResponseStatus, Any)
    case watch(resource: String, from: Int, timeoutSeconds: Int, bookmarks: Bool)
  }

  static func status(_ code: Int, _ reason: String, _ message: String) -> [String: Any] {
    [
      "kind": "Status", "apiVersion": "v1", "metadata": [:] as [String: Any], "status": "Failure",
      "message": message, "reason": reason, "code": code,
    ]
  }

  /// Routes one request (called on the connection's event loop).
  func route(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: Data) -> Reply {
    let components = URLComponents(string: uri)
    let path = components?.path ?? uri
    var query: [String: String] = [:]
    for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
    return state.withLock { state -> Reply in
      state.requests.append("\(method.rawValue) \(uri)")
      if !state.acceptedTokens.isEmpty {
        let token = headers.first(name: "authorization").map { String($0.dropFirst("Bearer ".count)) }
        guard let token, state.acceptedTokens.contains(token) else {
          return .json(.unauthorized, Self.status(401, "Unauthorized", "Unauthorized"))
        }
      }
      func forbidden(_ verb: String, _ resource: String) -> Reply? {
        guard state.forbidden.contains("\(verb) \(resource)") else { return nil }
        return .json(
          .forbidden,
          Self.status(
            403, "Forbidden",
            "\(resource) is forbidden: User \"system:serviceaccount:kube-system:kiam-server\" cannot \(verb) resource \"\(resource)\" in API group \"\" at the cluster scope"
          ))
      }
      switch (method, path) {
      case (.GET, "/api/v1/pods"), (.GET, "/api/v1/namespaces"):
        let resource = path.hasSuffix("pods") ? "pods" : "namespaces"
        if query["watch"] == "true" || query["watch"] == "1" {
          if let denied = forbidden("watch", resource) { return denied }
          state.watchRequests += 1
          let from = Int(query["resourceVersion"] ?? "0") ?? 0
          return .watch(
            resource: resource, from: from, timeoutSeconds: Int(query["timeoutSeconds"] ?? "300") ?? 300,
            bookmarks: query["allowWatchBookmarks"] == "true")
        }
        if let denied = forbidden("list", resource) { return denied }
        state.listRequests += 1
        return list(resource: resource, query: query, state: &state)
      case (.POST, _) where path == "/apis/authentication.k8s.io/v1/tokenreviews":
        if let denied = forbidden("create", "tokenreviews") { return denied }
        let request = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any]
        let spec = request?["spec"] as? [String: Any]
        let token = spec?["token"] as? String ?? ""
        var status: [String: Any] = ["authenticated": false, "error": "invalid bearer token"]
        if let identity = state.tokenReviews[token] {
          let wanted = spec?["audiences"] as? [String] ?? []
          if wanted.isEmpty || wanted.contains(where: identity.audiences.contains) {
            status = [
              "authenticated": true, "audiences": identity.audiences,
              "user": [
                "username": identity.username, "uid": "u-1", "groups": ["system:serviceaccounts"],
                "extra": identity.extra,
              ],
            ]
          } else {
            status = ["authenticated": false, "error": "token audiences \(identity.audiences) do not match \(wanted)"]
          }
        }
        return .json(.created, ["apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status])
      case (.POST, _) where path.hasPrefix("/api/v1/namespaces/") && path.hasSuffix("/events"):
        if let denied = forbidden("create", "events") { return denied }
        let object = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:]
        let metadata = object["metadata"] as? [String: Any]
        state.events.append(
          RecordedEvent(
            verb: "create", namespace: path.split(separator: "/")[3].description,
            name: metadata?["name"] as? String ?? "", reason: object["reason"] as? String,
            message: object["message"] as? String, count: object["count"] as? Int,
            involvedName: (object["involvedObject"] as? [String: Any])?["name"] as? String, json: body))
        return .json(.created, object)
      case (.PATCH, _) where path.hasPrefix("/api/v1/namespaces/") && path.contains("/events/"):
        if let denied = forbidden("patch", "events") { return denied }
        let parts = path.split(separator: "/")
        let object = ((try? JSONSerialization.jsonObject(with: body)) as? [String: Any]) ?? [:]
        let name = parts.last.map(String.init) ?? ""
        guard state.events.contains(where: { $0.name == name }) else {
          return .json(.notFound, Self.status(404, "NotFound", "events \"\(name)\" not found"))
        }
        state.events.append(
          RecordedEvent(
            verb: "patch", namespace: String(parts[3]), name: name, reason: nil, message: nil,
            count: object["count"] as? Int, involvedName: nil, json: body))
        return .json(.ok, object)
      default:
        return .json(.notFound, Self.status(404, "NotFound", "the server could not find the requested resource"))
      }
    }
  }

  private func list(resource: String, query: [String: String], state: inout State) -> Reply {
    let limit = Int(query["limit"] ?? "") ?? Int.max
    var offset = 0
    var listRV = state.resourceVersion
    if let token = query["continue"], !token.isEmpty {
      let parts = token.split(separator: ":")
      guard parts.count == 2, let rv = Int(parts[0]), let start = Int(parts[1]) else {
        return .json(.badRequest, Self.status(400, "BadRequest", "invalid continue token"))
      }
      if rv < state.compactedThrough {
        return .json(
          .gone,
          Self.status(410, "Expired", "The provided continue parameter is too old to display a consistent list result.")
        )
      }
      offset = start
      listRV = rv
    }
    let keys: [String]
    if let cached = state.sortedKeys[resource], cached.resourceVersion == state.resourceVersion {
      keys = cached.keys
    } else {
      keys = resource == "pods" ? state.pods.keys.sorted() : state.namespaces.keys.sorted()
      state.sortedKeys[resource] = (state.resourceVersion, keys)
    }
    let page: [[String: Any]] = keys.dropFirst(offset).prefix(limit).map { key in
      if resource == "pods" {
        let (pod, rv) = state.pods[key]!
        return pod.json(resourceVersion: rv)
      }
      let (namespace, rv) = state.namespaces[key]!
      return namespace.json(resourceVersion: rv)
    }
    var metadata: [String: Any] = ["resourceVersion": String(listRV)]
    if offset + page.count < keys.count { metadata["continue"] = "\(listRV):\(offset + page.count)" }
    return .json(
      .ok,
      [
        "kind": resource == "pods" ? "PodList" : "NamespaceList", "apiVersion": "v1", "metadata": metadata,
        "items": page,
      ])
  }

  /// Starts a watch on `channel`: replays history after `from`, then streams live events.
  func startWatch(channel: any Channel, resource: String, from: Int, timeoutSeconds: Int, bookmarks: Bool) {
    let head = HTTPResponseHead(
      version: .http1_1, status: .ok,
      headers: ["Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache"])
    channel.writeAndFlush(HTTPServerResponsePart.head(head), promise: nil)
    let registered: Bool = state.withLock { state in
      if from < state.compactedThrough {
        let status = Self.status(410, "Expired", "too old resource version: \(from) (\(state.compactedThrough))")
        Self.write(Self.line(type: "ERROR", object: status), to: channel)
        channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        return false
      }
      for entry in state.history where entry.resource == resource && entry.resourceVersion > from {
        Self.write(entry.line, to: channel)
      }
      state.nextWatcherID += 1
      let watcher = Watcher(id: state.nextWatcherID, channel: channel, resource: resource, bookmarks: bookmarks)
      state.watchers[watcher.id] = watcher
      let id = watcher.id
      channel.closeFuture.whenComplete { [self] _ in _ = self.state.withLock { $0.watchers.removeValue(forKey: id) } }
      channel.eventLoop.scheduleTask(in: .seconds(Int64(timeoutSeconds))) { [self] in
        let stillOpen = self.state.withLock { $0.watchers.removeValue(forKey: id) != nil }
        if stillOpen { channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil) }
      }
      return true
    }
    _ = registered
  }

  var latency: Duration { state.withLock { $0.latency } }
}

/// Per-connection HTTP handler of the test API server.
final class APIHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let server: KubernetesAPITestServer
  private var head: HTTPRequestHead?
  private var body = Data()

  init(server: KubernetesAPITestServer) {
    self.server = server
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let head):
      self.head = head
      body = Data()
    case .body(let buffer):
      body.append(contentsOf: buffer.readableBytesView)
    case .end:
      guard let head else { return }
      let body = self.body
      self.head = nil
      let channel = context.channel
      let server = self.server
      let reply = server.route(method: head.method, uri: head.uri, headers: head.headers, body: body)
      let latency = server.latency
      let respond = {
        switch reply {
        case .json(let status, let object):
          let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
          let responseHead = HTTPResponseHead(
            version: head.version, status: status,
            headers: ["Content-Type": "application/json", "Content-Length": String(data.count)])
          channel.write(HTTPServerResponsePart.head(responseHead), promise: nil)
          channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: data))), promise: nil)
          channel.writeAndFlush(HTTPServerResponsePart.end(nil), promise: nil)
        case .watch(let resource, let from, let timeout, let bookmarks):
          server.startWatch(
            channel: channel, resource: resource, from: from, timeoutSeconds: timeout, bookmarks: bookmarks)
        }
      }
      if latency > .zero {
        context.eventLoop.assumeIsolated().scheduleTask(
          in: .nanoseconds(latency.components.seconds * 1_000_000_000 + latency.components.attoseconds / 1_000_000_000)
        ) {
          respond()
        }
      } else {
        respond()
      }
    }
  }
}
