import NIOCore
import NIOEmbedded
import NIOHTTP1
import Synchronization
import Testing

@testable import KiamShared

/// ``HTTPConnectionHandler`` on an `EmbeddedChannel`: every rule of its documentation, byte for
/// byte, with no sockets and no timing.
@Suite struct HTTPConnectionHandlerTests {
  /// Answers `/slow` when the test completes its promise, everything else at once with the path.
  final class Handler: HTTPRequestHandler {
    let slow = Mutex<[EventLoopPromise<HTTPResponse>]>([])
    let seen = Mutex<[String]>([])

    func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult {
      seen.withLock { $0.append("\(request.method) \(request.uri)") }
      guard request.uri == "/slow" else { return .immediate(.text(.ok, request.uri)) }
      let promise = eventLoop.makePromise(of: HTTPResponse.self)
      slow.withLock { $0.append(promise) }
      return .deferred(promise.futureResult)
    }

    func finishSlow(_ body: String = "slow") {
      let promises = slow.withLock { promises in
        defer { promises = [] }
        return promises
      }
      for promise in promises { promise.succeed(.text(.ok, body)) }
    }
  }

  let handler = Handler()

  func connection(maxHeaderBytes: Int = 8192, maxBodyBytes: Int = 1024) throws -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    let connectionGuard = ConnectionGuard(readTimeout: .seconds(10), idleTimeout: .seconds(60))
    try channel.pipeline.syncOperations.addHandler(connectionGuard)
    try channel.pipeline.syncOperations.addHandler(
      ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
    try channel.pipeline.syncOperations.addHandler(
      HTTPConnectionHandler(
        handler: handler, connectionGuard: connectionGuard, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes))
    try channel.connect(to: SocketAddress(ipAddress: "10.0.0.7", port: 40000)).wait()
    return channel
  }

  /// Bytes from the client, then the read a real channel issues after them (auto-read): the
  /// handler holds it while a response is outstanding, and the decoder goes on only when it is let
  /// through.
  func send(_ channel: EmbeddedChannel, _ text: String) throws {
    try channel.writeInbound(ByteBuffer(string: text))
    if channel.isActive { channel.pipeline.read() }
  }

  /// Everything written to the client so far.
  func written(_ channel: EmbeddedChannel) throws -> String {
    var out = ""
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out += String(buffer: buffer) }
    return out
  }

  /// The status lines, in order (bodies here have no line breaks and may run into the next one).
  func statusLines(_ text: String) -> [String] {
    text.matches(of: /HTTP\/1\.[01] \d{3} [^\r]*/).map { String($0.output) }
  }

  @Test func pipelinedRequestsAreAnsweredInOrderBehindASlowOne() throws {
    let channel = try connection()
    try send(channel, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\nGET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
    // The second waits for the first: nothing is written, and it has not been handled yet.
    #expect(try written(channel).isEmpty)
    #expect(handler.seen.withLock { $0 } == ["GET /slow"])
    handler.finishSlow()
    let out = try written(channel)
    #expect(statusLines(out) == ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "\(handler.seen.withLock { $0 }) \(out)")
    let slow = try #require(out.range(of: "slow"))
    let fast = try #require(out.range(of: "/fast"))
    #expect(slow.lowerBound < fast.lowerBound)
    #expect(channel.isActive, "keep-alive connections stay open")
    _ = try? channel.finish()
  }

  @Test func tooManyPipelinedRequestsCloseTheConnection() throws {
    let channel = try connection()
    let request = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"
    try send(channel, String(repeating: request, count: HTTPConnectionHandler.maxQueuedRequests + 2))
    #expect(!channel.isActive)
    #expect(handler.seen.withLock { $0.count } == 1)
  }

  @Test func whatTheParserRejectsGets400AfterTheAnswersBeforeIt() throws {
    let channel = try connection()
    try send(channel, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\nNOT HTTP AT ALL\r\n\r\n")
    let out = try written(channel)
    #expect(statusLines(out) == ["HTTP/1.1 200 OK", "HTTP/1.1 400 Bad Request"])
    #expect(!channel.isActive)
  }

  @Test func limitsAreAnsweredAndTheConnectionCloses() throws {
    let big = try connection(maxHeaderBytes: 256)
    try send(big, "GET /fast HTTP/1.1\r\nHost: a\r\nX-Pad: \(String(repeating: "p", count: 400))\r\n\r\n")
    #expect(statusLines(try written(big)) == ["HTTP/1.1 431 Request Header Fields Too Large"])
    #expect(!big.isActive)
    let body = try connection(maxBodyBytes: 8)
    try send(body, "PUT /fast HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
    #expect(statusLines(try written(body)) == ["HTTP/1.1 413 Payload Too Large"])
    #expect(handler.seen.withLock { $0 }.isEmpty, "refused before the handler")
  }

  @Test func headGetsNoBodyAndHTTP10IsAnsweredAs10AndClosed() throws {
    let channel = try connection()
    try send(channel, "HEAD /fast HTTP/1.1\r\nHost: a\r\n\r\n")
    let head = try written(channel)
    #expect(head.hasPrefix("HTTP/1.1 200 OK"))
    #expect(head.hasSuffix("\r\n\r\n"), "no body after the head: \(head)")
    try send(channel, "GET /fast HTTP/1.0\r\n\r\n")
    #expect(try written(channel).hasPrefix("HTTP/1.0 200 OK"))
    #expect(!channel.isActive)
  }

  @Test func anUpgradeRequestIsAnsweredWithConnectionClose() throws {
    let channel = try connection()
    try send(channel, "GET /fast HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    let out = try written(channel)
    #expect(out.lowercased().contains("connection: close"))
    #expect(!channel.isActive)
  }

  @Test func shutdownClosesAnIdleConnectionAtOnceAndABusyOneAfterItsAnswer() throws {
    let idle = try connection()
    idle.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    #expect(!idle.isActive)
    let busy = try connection()
    try send(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
    busy.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    #expect(busy.isActive, "the request it is on is finished first")
    handler.finishSlow()
    let out = try written(busy)
    #expect(out.hasPrefix("HTTP/1.1 200 OK"))
    #expect(out.lowercased().contains("connection: close"))
    #expect(!busy.isActive)
  }
}
