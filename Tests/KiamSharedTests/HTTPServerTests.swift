import KiamTestSupport
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import KiamShared

/// The hardened HTTP server over real sockets.
@Suite struct HTTPServerTests {
  struct Echo: HTTPRequestHandler {
    func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult {
      if request.path == "/slow" {
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        eventLoop.scheduleTask(in: .milliseconds(300)) { promise.succeed(.text(.ok, "slow done")) }
        return .deferred(promise.futureResult)
      }
      switch request.path {
      case "/hold":
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        HTTPServerTests.held.withLock { $0.append(promise) }
        return .deferred(promise.futureResult)
      case "/prepared": return .immediate(HTTPServerTests.prepared)
      case "/nocontent": return .immediate(HTTPResponse(status: .noContent, body: ByteBuffer(string: "dropped")))
      case "/headers":
        return .immediate(
          HTTPResponse(
            status: .ok,
            headers: [
              "X-Good": "yes", "X-Bad": "a\r\nInjected: 1", "Bad Name": "x", "Content-Length": "999",
              "Connection": "keep-alive", "Transfer-Encoding": "chunked",
            ],
            body: ByteBuffer(string: "ok")))
      default: break
      }
      let body = request.body.map { String(buffer: $0) } ?? ""
      return .immediate(.text(.ok, "\(request.method) \(request.uri) \(body)"))
    }
  }

  static let maxQueued = HTTPConnectionHandler.maxQueuedRequests

  /// Responses to `/hold`, completed by the test.
  static let held = Mutex<[EventLoopPromise<HTTPResponse>]>([])

  static let prepared = HTTPResponse(
    status: .ok, headers: ["Content-Type": "application/json"], body: ByteBuffer(string: "{\"a\":1}\n")
  ).prepared()

  func withServer(
    _ configure: (inout HTTPServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (Int, HTTPServer) async throws -> Void
  ) async throws {
    var configuration = HTTPServerConfiguration(host: "127.0.0.1", port: 0)
    configure(&configuration)
    let server = HTTPServer(configuration: configuration, handler: Echo(), logger: Logger(label: "test"))
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await server.run() }
      let port = try await server.listeningAddress.port!
      try await body(port, server)
      group.cancelAll()
    }
  }

  @Test func answersAndKeepsConnectionsAlive() async throws {
    try await withServer { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n")
      let first = socket.receiveResponse()
      #expect(first.hasPrefix("HTTP/1.1 200 OK"))
      #expect(first.lowercased().contains("content-length: 11"))
      #expect(first.hasSuffix("GET /a?x=1 "))
      try socket.send("POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
      #expect(socket.receiveResponse().hasSuffix("POST /b hello"))
    }
  }

  @Test func deferredResponsesArrive() async throws {
    try await withServer { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
      #expect(socket.receiveResponse().hasSuffix("slow done"))
    }
  }

  @Test func oversizeHeadIsRefused() async throws {
    try await withServer({ $0.maxHeaderBytes = 1024 }) { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 1500))\r\n\r\n")
      let response = socket.receive()
      #expect(response.hasPrefix("HTTP/1.1 431"))
      // Far beyond every limit: the parser's own backstop answers 400 and the connection closes.
      let huge = try RawSocket(port: port)
      try huge.send("GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 40_000))\r\n\r\n")
      #expect(huge.receive().hasPrefix("HTTP/1.1 400"))
    }
  }

  @Test func oversizeBodyIsRefused() async throws {
    try await withServer({ $0.maxBodyBytes = 16 }) { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n\(String(repeating: "b", count: 100))")
      #expect(socket.receive().hasPrefix("HTTP/1.1 413"))
      let chunked = try RawSocket(port: port)
      try chunked.send(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n\(String(repeating: "c", count: 32))\r\n0\r\n\r\n"
      )
      #expect(chunked.receive().hasPrefix("HTTP/1.1 413"))
    }
  }

  @Test func slowRequestsAreCutOff() async throws {
    try await withServer({ $0.requestReadTimeout = .milliseconds(400) }) { port, _ in
      let socket = try RawSocket(port: port, receiveTimeout: 5)
      try socket.send("GET / HTTP/1.1\r\nHost: t\r\n")
      let clock = ContinuousClock()
      let started = clock.now
      // Keep trickling header bytes: the deadline counts from the first byte, not the last.
      for _ in 0..<3 {
        try await Task.sleep(for: .milliseconds(100))
        try? socket.send("X-Slow: 1\r\n")
      }
      #expect(socket.isClosedByPeer())
      #expect(clock.now - started < .seconds(3))
    }
  }

  @Test func idleConnectionsAreClosed() async throws {
    try await withServer({ $0.idleTimeout = .milliseconds(300) }) { port, _ in
      let socket = try RawSocket(port: port, receiveTimeout: 5)
      try socket.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
      _ = socket.receiveResponse()
      #expect(socket.isClosedByPeer())
    }
  }

  @Test func connectionCapIsEnforced() async throws {
    try await withServer({ $0.maxConnections = 2 }) { port, server in
      let a = try RawSocket(port: port)
      let b = try RawSocket(port: port)
      try a.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
      try b.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
      _ = a.receiveResponse()
      _ = b.receiveResponse()
      let c = try RawSocket(port: port)
      #expect(c.isClosedByPeer())
      #expect(server.openConnections == 2)
    }
  }

  // MARK: Connection handling owned by HTTPConnectionHandler

  @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
    try await withServer { port, _ in
      let socket = try RawSocket(port: port)
      // One write: a slow request first, then three that could be answered at once.
      try socket.send(
        "GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /a HTTP/1.1\r\nHost: t\r\n\r\n"
          + "HEAD /b HTTP/1.1\r\nHost: t\r\n\r\nGET /c HTTP/1.1\r\nHost: t\r\n\r\n")
      let all = socket.receive(until: "GET /c ")
      let responses = all.components(separatedBy: "HTTP/1.1 200 OK\r\n").dropFirst()
      #expect(responses.count == 4)
      let bodies = responses.map { $0.components(separatedBy: "\r\n\r\n").last ?? "" }
      #expect(bodies == ["slow done", "GET /a ", "", "GET /c "])
      // HEAD: the length of the body a GET would get, and no body.
      #expect(Array(responses)[2].contains("Content-Length: 8\r\n"))
      #expect(!all.lowercased().contains("connection: close"))
    }
  }

  @Test func http10ClientsGetHttp10AndTheirConnectionChoice() async throws {
    try await withServer { port, _ in
      let closing = try RawSocket(port: port)
      try closing.send("GET /x HTTP/1.0\r\n\r\n")
      let answer = closing.receive()
      #expect(answer.hasPrefix("HTTP/1.0 200 OK\r\n"))
      #expect(answer.contains("Connection: close\r\n"))
      #expect(answer.hasSuffix("GET /x "))
      #expect(closing.isClosedByPeer())

      let kept = try RawSocket(port: port)
      try kept.send("GET /y HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      let first = kept.receiveResponse()
      #expect(first.hasPrefix("HTTP/1.0 200 OK\r\n"))
      #expect(first.contains("Connection: keep-alive\r\n"))
      try kept.send("GET /z HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
      #expect(kept.receiveResponse().hasSuffix("GET /z "))
    }
  }

  @Test func unparsableRequestsGet400AndAreClosed() async throws {
    try await withServer { port, _ in
      let garbage = try RawSocket(port: port)
      try garbage.send("NOT AN HTTP REQUEST\r\n\r\n")
      #expect(garbage.receive() == "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

      // After a request still being answered: its answer first, then the 400, then close.
      let late = try RawSocket(port: port)
      try late.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /\u{01} HTTP/1.1\r\n\r\n")
      let both = late.receive()
      #expect(both.hasPrefix("HTTP/1.1 200 OK\r\n"))
      #expect(both.contains("slow doneHTTP/1.1 400 Bad Request\r\n"))

      // A broken chunked body in the middle of a request.
      let chunked = try RawSocket(port: port)
      try chunked.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
      #expect(chunked.receive().hasPrefix("HTTP/1.1 400 Bad Request\r\n"))
    }
  }

  @Test func responsesAreFramedByTheServer() async throws {
    try await withServer { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("GET /headers HTTP/1.1\r\nHost: t\r\n\r\n")
      let answer = socket.receiveResponse()
      #expect(answer == "HTTP/1.1 200 OK\r\nX-Good: yes\r\nContent-Length: 2\r\n\r\nok")
      // 204 carries neither a length nor a body; the connection goes on.
      try socket.send("GET /nocontent HTTP/1.1\r\nHost: t\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
      let next = socket.receive(until: "GET /after ")
      #expect(next.hasPrefix("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n"))
    }
  }

  @Test func preparedResponsesAreTheSameBytes() async throws {
    var buffer = ByteBuffer()
    Self.prepared.encode(version: .http1_1, keepAlive: true, includeBody: true, into: &buffer)
    let encoded = buffer
    #expect(Self.prepared.keepAliveEncoding == encoded)
    #expect(
      String(buffer: encoded)
        == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{\"a\":1}\n")
    // Any change drops the preparation.
    var changed = Self.prepared
    changed.headers.add(name: "X-More", value: "1")
    #expect(changed.keepAliveEncoding == nil)

    try await withServer { port, _ in
      let socket = try RawSocket(port: port)
      try socket.send("GET /prepared HTTP/1.1\r\nHost: t\r\n\r\n")
      #expect(socket.receiveResponse() == String(buffer: encoded))
      // Not for HEAD, HTTP/1.0 or a closing connection: encoded for the request instead.
      try socket.send("HEAD /prepared HTTP/1.1\r\nHost: t\r\n\r\nGET /prepared HTTP/1.1\r\nConnection: close\r\n\r\n")
      let rest = socket.receive()
      #expect(
        rest == "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n"
          + "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\nConnection: close\r\n\r\n{\"a\":1}\n"
      )
    }
  }

  @Test func gracefulShutdownClosesIdleConnectionsAndFinishesBusyOnes() async throws {
    let server = HTTPServer(
      configuration: .init(host: "127.0.0.1", port: 0), handler: Echo(), logger: Logger(label: "test"))
    try await testGracefulShutdown { trigger in
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningAddress.port!
        let idle = try RawSocket(port: port)
        try idle.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        _ = idle.receiveResponse()
        let busy = try RawSocket(port: port)
        try busy.send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(await eventually { HTTPServerTests.held.withLock { $0.count } == 1 })
        trigger.triggerGracefulShutdown()
        // The idle connection is closed at once; the busy one stays until it has its answer.
        #expect(await eventually { server.openConnections == 1 })
        #expect(idle.isClosedByPeer())
        HTTPServerTests.held.withLock { held in
          for promise in held { promise.succeed(.text(.ok, "slow done")) }
          held.removeAll()
        }
        let last = busy.receiveResponse()
        #expect(last.contains("Connection: close\r\n"))
        #expect(last.hasSuffix("slow done"))
        #expect(busy.isClosedByPeer())
        try await group.waitForAll()
        // run() has returned: the listener is gone too.
        #expect(!FreePort.canConnect(host: "127.0.0.1", port: port))
      }
    }
  }

  @Test func deepPipeliningIsCutOff() async throws {
    try await withServer { port, _ in
      let request = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
      let fine = try RawSocket(port: port)
      try fine.send(
        "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + String(repeating: request, count: HTTPServerTests.maxQueued - 1)
          + "GET /last HTTP/1.1\r\nHost: t\r\n\r\n")
      let answers = fine.receive(until: "GET /last ")
      #expect(answers.components(separatedBy: "HTTP/1.1 200 OK\r\n").count - 1 == HTTPServerTests.maxQueued + 1)

      let abusive = try RawSocket(port: port)
      try abusive.send(
        "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + String(repeating: request, count: 4 * HTTPServerTests.maxQueued))
      #expect(abusive.receive().isEmpty)
      #expect(abusive.isClosedByPeer())
    }
  }

  @Test func upgradeRequestsEndTheConnection() async throws {
    try await withServer { port, _ in
      for request in [
        "GET /up HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        "CONNECT t:80 HTTP/1.1\r\nHost: t:80\r\n\r\n",
      ] {
        let socket = try RawSocket(port: port)
        // Bytes after the request are never parsed, so nothing may pile up behind it.
        try socket.send(request + String(repeating: "x", count: 10_000))
        let answer = socket.receive()
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(request)")
        #expect(answer.contains("Connection: close\r\n"), "\(request)")
        #expect(socket.isClosedByPeer())
      }
    }
  }
}
