public import NIOCore
public import NIOHTTP1

/// A complete HTTP response produced by an ``HTTPRequestHandler``.
public struct HTTPResponse: Sendable {
  /// The status.
  public var status: HTTPResponseStatus
  /// Headers to send; `Content-Length` is added by the server.
  public var headers: HTTPHeaders
  /// The body.
  public var body: ByteBuffer

  public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  /// A `text/plain` response.
  public static func text(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
    HTTPResponse(
      status: status,
      headers: ["Content-Type": "text/plain; charset=utf-8"],
      body: ByteBuffer(string: text)
    )
  }

  /// An error response shaped like Go's `http.Error`: `text/plain`, `nosniff`, message plus newline.
  /// kiam's agent used this for every error it generated, and its bodies are part of the contract.
  public static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
    HTTPResponse(
      status: status,
      headers: [
        "Content-Type": "text/plain; charset=utf-8",
        "X-Content-Type-Options": "nosniff",
      ],
      body: ByteBuffer(string: message + "\n")
    )
  }
}

/// What a handler returns: a response now, or one that completes later on the connection's loop.
public enum HTTPResponseResult: Sendable {
  /// The response is ready.
  case immediate(HTTPResponse)
  /// The response will complete the future.
  case deferred(EventLoopFuture<HTTPResponse>)
}

/// Handles requests of an ``HTTPServer``.
///
/// `handle` runs on the connection's event loop and must not block: answer from memory with
/// ``HTTPResponseResult/immediate(_:)`` or hand slow work elsewhere and return
/// ``HTTPResponseResult/deferred(_:)``.
public protocol HTTPRequestHandler: Sendable {
  func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult
}
