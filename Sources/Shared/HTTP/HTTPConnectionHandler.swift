import NIOCore
import NIOHTTP1

/// Owns one HTTP/1.x connection behind NIO's request decoder: reads one request at a time,
/// enforces size limits, calls the ``HTTPRequestHandler`` and writes its response as bytes
/// (``HTTPResponse/encode(version:keepAlive:includeBody:into:)``, or the response's prepared
/// keep-alive encoding as it is).
///
/// - Pipelining: requests that arrive while a response is outstanding wait in order, and the
///   connection stops reading until that response is written. A client that pipelines more than
///   ``maxQueuedRequests`` requests behind one outstanding response is disconnected.
/// - A request the parser rejects gets `400` and the connection closes (after the responses to
///   the requests before it).
/// - An upgrade request (`Upgrade`, `CONNECT`) is answered with `Connection: close`: NIO's decoder
///   reads nothing after one.
/// - Server shutdown (`ChannelShouldQuiesceEvent`): an idle connection closes at once; a busy one
///   finishes the request it is on, answers with `Connection: close` and closes.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer

  private enum State {
    /// Between requests.
    case idle
    /// Reading a request (head seen, end not yet).
    case reading
    /// A request was read; its response is outstanding.
    case responding
    /// The last response was written (or refused); the connection is closing.
    case closing
  }

  /// What arrived while a response was outstanding, in order.
  private enum Queued {
    case part(HTTPServerRequestPart)
    case parserError
  }

  /// The request being read or answered.
  private struct Current {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var bodyBytes = 0
  }

  /// Pipelined requests a connection may have waiting behind an outstanding response.
  static let maxQueuedRequests = 128

  private static let badRequest = ByteBuffer(
    string: "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

  private let handler: any HTTPRequestHandler
  private let connectionGuard: ConnectionGuard
  private let maxHeaderBytes: Int
  private let maxBodyBytes: Int
  private var state = State.idle
  private var current: Current?
  private var queue = CircularBuffer<Queued>(initialCapacity: 0)
  private var queuedRequests = 0
  private var readPending = false
  private var draining = false
  private var quiescing = false
  private var connectionContext: HTTPConnectionContext?

  /// - Parameter connectionGuard: The guard in front of the decoder in the same pipeline.
  init(handler: any HTTPRequestHandler, connectionGuard: ConnectionGuard, maxHeaderBytes: Int, maxBodyBytes: Int) {
    self.handler = handler
    self.connectionGuard = connectionGuard
    self.maxHeaderBytes = maxHeaderBytes
    self.maxBodyBytes = maxBodyBytes
  }

  // MARK: Inbound

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    let part = unwrapInboundIn(data)
    if state == .responding || !queue.isEmpty {
      guard state != .closing else { return }
      if case .head = part {
        queuedRequests += 1
        if queuedRequests > Self.maxQueuedRequests {
          startClosing()
          context.close(promise: nil)
          return
        }
      }
      queue.append(.part(part))
      return
    }
    process(.part(part), context: context)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    guard error is HTTPParserError else {
      context.close(promise: nil)
      return
    }
    if state == .responding || !queue.isEmpty {
      queue.append(.parserError)
    } else {
      process(.parserError, context: context)
    }
  }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    guard event is ChannelShouldQuiesceEvent else {
      context.fireUserInboundEventTriggered(event)
      return
    }
    quiescing = true
    clearQueue()
    switch state {
    case .idle:
      startClosing()
      context.close(promise: nil)
    case .reading, .responding:
      // Answered with Connection: close, then closed (see respond).
      break
    case .closing:
      break
    }
  }

  // MARK: Outbound

  func read(context: ChannelHandlerContext) {
    if state == .responding || !queue.isEmpty {
      readPending = true
    } else {
      context.read()
    }
  }

  // MARK: Requests

  private func process(_ event: Queued, context: ChannelHandlerContext) {
    switch event {
    case .parserError:
      guard state != .closing else { return }
      refuse(context: context)
    case .part(.head(let head)):
      if queuedRequests > 0 { queuedRequests -= 1 }
      guard state == .idle else { return }
      state = .reading
      current = Current(head: head)
      var size = head.uri.utf8.count + 16
      for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 4 }
      if size > maxHeaderBytes {
        reject(.requestHeaderFieldsTooLarge, "request header too large", context: context)
      } else if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
        reject(.payloadTooLarge, "request body too large", context: context)
      }
    case .part(.body(var chunk)):
      guard state == .reading, current != nil else { return }
      current!.bodyBytes += chunk.readableBytes
      if current!.bodyBytes > maxBodyBytes {
        reject(.payloadTooLarge, "request body too large", context: context)
      } else if current!.body == nil {
        current!.body = chunk
      } else {
        current!.body!.writeBuffer(&chunk)
      }
    case .part(.end):
      guard state == .reading, let request = current else { return }
      state = .responding
      dispatch(request, context: context)
    }
  }

  private func dispatch(_ request: Current, context: ChannelHandlerContext) {
    connectionGuard.requestRead()
    let connection: HTTPConnectionContext
    if let known = connectionContext {
      connection = known
    } else {
      connection = HTTPConnectionContext(
        remoteAddress: context.channel.remoteAddress, localAddress: context.channel.localAddress)
      connectionContext = connection
    }
    let head = request.head
    let httpRequest = HTTPRequest(
      method: head.method,
      uri: head.uri,
      headers: head.headers,
      body: request.body,
      connectionRequestIndex: connection.nextRequestIndex(),
      connection: connection
    )
    switch handler.handle(httpRequest, eventLoop: context.eventLoop) {
    case .immediate(let response):
      respond(response, context: context)
    case .deferred(let future):
      let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      future.hop(to: context.eventLoop).whenComplete { result in
        let (handler, context) = bound.value
        switch result {
        case .success(let response):
          handler.respond(response, context: context)
        case .failure(let error):
          handler.respond(.error(.internalServerError, KiamError.describe(error)), context: context)
        }
      }
    }
  }

  /// Writes the response to the current request, then either closes or goes on with the next.
  private func respond(_ response: HTTPResponse, context: ChannelHandlerContext) {
    guard state == .responding, let request = current?.head else { return }
    current = nil
    guard context.channel.isActive else {
      startClosing()
      return
    }
    // After an upgrade request (or CONNECT) the decoder reads nothing more, so the connection
    // cannot carry another request: it closes after the answer.
    let keepAlive =
      request.isKeepAlive && !quiescing && request.method != .CONNECT && !request.headers.contains(name: "upgrade")
    write(response, request: request, keepAlive: keepAlive, context: context)
    guard keepAlive else { return }
    state = .idle
    if !draining { drain(context: context) }
  }

  /// Goes through what arrived while a response was outstanding, then reads again.
  private func drain(context: ChannelHandlerContext) {
    draining = true
    defer { draining = false }
    while state == .idle || state == .reading, let next = queue.popFirst() {
      process(next, context: context)
    }
    if state == .closing { clearQueue() }
    if readPending, state != .responding, queue.isEmpty {
      readPending = false
      context.read()
    }
  }

  /// Answers a request that breaks a limit at once and closes (the rest of it is not read).
  private func reject(_ status: HTTPResponseStatus, _ message: String, context: ChannelHandlerContext) {
    guard let request = current?.head else { return }
    current = nil
    state = .responding
    connectionGuard.requestRead()
    write(.error(status, message), request: request, keepAlive: false, context: context)
  }

  /// A request the parser could not read: 400, then close.
  private func refuse(context: ChannelHandlerContext) {
    current = nil
    startClosing()
    writeAndClose(Self.badRequest, context: context)
  }

  private func clearQueue() {
    queue.removeAll()
    queuedRequests = 0
  }

  /// Nothing more is read or answered on this connection.
  private func startClosing() {
    state = .closing
    clearQueue()
  }

  private func writeAndClose(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
    guard context.channel.isActive else { return }
    context.writeAndFlush(wrapOutboundOut(bytes)).assumeIsolated().whenComplete { _ in
      context.close(promise: nil)
    }
  }

  private func write(
    _ response: HTTPResponse, request: HTTPRequestHead, keepAlive: Bool, context: ChannelHandlerContext
  ) {
    if !keepAlive { startClosing() }
    guard context.channel.isActive else { return }
    let includeBody = request.method != .HEAD && request.method != .CONNECT
    // Answered as HTTP/1.0 to 1.0 (and 0.9) clients, as HTTP/1.1 otherwise.
    let version: HTTPVersion = request.version.major == 0 || request.version == .http1_0 ? .http1_0 : .http1_1
    let bytes: ByteBuffer
    if keepAlive, includeBody, version == .http1_1, let prepared = response.keepAliveEncoding {
      bytes = prepared
    } else {
      var buffer = context.channel.allocator.buffer(capacity: 160 + response.body.readableBytes)
      response.encode(version: version, keepAlive: keepAlive, includeBody: includeBody, into: &buffer)
      bytes = buffer
    }
    connectionGuard.responseWritten()
    if keepAlive {
      context.writeAndFlush(wrapOutboundOut(bytes), promise: nil)
    } else {
      writeAndClose(bytes, context: context)
    }
  }
}
