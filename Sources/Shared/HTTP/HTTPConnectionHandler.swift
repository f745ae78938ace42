import NIOCore
import NIOHTTP1

/// Collects one request at a time (the pipelining handler in front serialises them), enforces
/// size limits, calls the ``HTTPRequestHandler`` and writes its response.
final class HTTPConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let handler: any HTTPRequestHandler
  private let connectionGuard: ConnectionGuard
  private let maxHeaderBytes: Int
  private let maxBodyBytes: Int
  private var head: HTTPRequestHead?
  private var body: ByteBuffer?
  private var rejecting = false
  private var connectionContext: HTTPConnectionContext?

  /// - Parameter connectionGuard: The guard in front of the decoder in the same pipeline.
  init(handler: any HTTPRequestHandler, connectionGuard: ConnectionGuard, maxHeaderBytes: Int, maxBodyBytes: Int) {
    self.handler = handler
    self.connectionGuard = connectionGuard
    self.maxHeaderBytes = maxHeaderBytes
    self.maxBodyBytes = maxBodyBytes
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let requestHead):
      head = requestHead
      body = nil
      rejecting = false
      var size = requestHead.uri.utf8.count + 16
      for (name, value) in requestHead.headers { size += name.utf8.count + value.utf8.count + 4 }
      if size > maxHeaderBytes {
        reject(context: context, status: .requestHeaderFieldsTooLarge, message: "request header too large")
      } else if let length = requestHead.headers.first(name: "content-length").flatMap(Int.init), length > maxBodyBytes {
        reject(context: context, status: .payloadTooLarge, message: "request body too large")
      }
    case .body(var chunk):
      guard !rejecting else { return }
      if (body?.readableBytes ?? 0) + chunk.readableBytes > maxBodyBytes {
        reject(context: context, status: .payloadTooLarge, message: "request body too large")
        return
      }
      if body == nil {
        body = chunk
      } else {
        body!.writeBuffer(&chunk)
      }
    case .end:
      guard !rejecting, let requestHead = head else { return }
      head = nil
      connectionGuard.requestRead()
      let connection: HTTPConnectionContext
      if let known = connectionContext {
        connection = known
      } else {
        connection = HTTPConnectionContext(remoteAddress: context.channel.remoteAddress, localAddress: context.channel.localAddress)
        connectionContext = connection
      }
      let request = HTTPRequest(
        method: requestHead.method,
        uri: requestHead.uri,
        headers: requestHead.headers,
        body: body,
        connectionRequestIndex: connection.nextRequestIndex(),
        connection: connection
      )
      body = nil
      let keepAlive = requestHead.isKeepAlive
      let version = requestHead.version
      switch handler.handle(request, eventLoop: context.eventLoop) {
      case .immediate(let response):
        write(response, version: version, keepAlive: keepAlive, context: context)
      case .deferred(let future):
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        future.hop(to: context.eventLoop).whenComplete { result in
          let (handler, context) = bound.value
          let response: HTTPResponse
          switch result {
          case .success(let value): response = value
          case .failure(let error):
            response = .error(.internalServerError, KiamError.describe(error))
          }
          handler.write(response, version: version, keepAlive: keepAlive, context: context)
        }
      }
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    // Protocol errors were answered (400) by NIO's error handler in front; drop the connection.
    context.close(promise: nil)
  }

  private func reject(context: ChannelHandlerContext, status: HTTPResponseStatus, message: String) {
    rejecting = true
    let version = head?.version ?? .http1_1
    head = nil
    body = nil
    connectionGuard.requestRead()
    write(.error(status, message), version: version, keepAlive: false, context: context)
  }

  private func write(_ response: HTTPResponse, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
    guard context.channel.isActive else { return }
    var headers = response.headers
    headers.replaceOrAdd(name: "Content-Length", value: String(response.body.readableBytes))
    if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
    let head = HTTPResponseHead(version: version, status: response.status, headers: headers)
    context.write(wrapOutboundOut(.head(head)), promise: nil)
    if response.body.readableBytes > 0 {
      context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
    }
    connectionGuard.responseWritten()
    guard !keepAlive else {
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
      return
    }
    let done = context.eventLoop.makePromise(of: Void.self)
    context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
    let channel = context.channel
    done.futureResult.whenComplete { _ in channel.close(promise: nil) }
  }
}
