import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The hardened HTTP server over real sockets.
@Suite struct HTTPServerTests {
  struct Echo: HTTPRequestHandler {
    func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult {
      if request.path == "/slow" {
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        eventLoop.scheduleTask(in: .milliseconds(300)) { promise.succeed(.text(.ok, "slow done")) }
        return .deferred(promise.futureResult)
      }
      let body = request.body.map { String(buffer: $0) } ?? ""
      return .immediate(.text(.ok, "\(request.method) \(request.uri) \(body)"))
    }
  }

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
      try chunked.send("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n\(String(repeating: "c", count: 32))\r\n0\r\n\r\n")
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

  @Test func gracefulShutdownFinishesInFlightRequests() async throws {
    let server = HTTPServer(
      configuration: .init(host: "127.0.0.1", port: 0), handler: Echo(), logger: Logger(label: "test"))
    try await testGracefulShutdown { trigger in
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningAddress.port!
        let socket = try RawSocket(port: port)
        try socket.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        try await Task.sleep(for: .milliseconds(50))
        trigger.triggerGracefulShutdown()
        #expect(socket.receiveResponse().hasSuffix("slow done"))
        try await group.waitForAll()
      }
    }
    #expect(!FreePort.canConnect(host: "127.0.0.1", port: 1))
  }
}
