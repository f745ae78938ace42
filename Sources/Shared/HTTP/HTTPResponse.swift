public import NIOCore
public import NIOHTTP1

/// A complete HTTP response produced by an ``HTTPRequestHandler``.
public struct HTTPResponse: Sendable {
  /// The status.
  public var status: HTTPResponseStatus {
    didSet { keepAliveEncoding = nil }
  }
  /// Headers to send. The server sets the framing itself: `Content-Length` (from ``body``) and
  /// `Connection`; those, `Transfer-Encoding`, `Keep-Alive`, and fields that are not valid HTTP
  /// (a name that is not a token, a value with CR, LF or NUL) are not sent.
  public var headers: HTTPHeaders {
    didSet { keepAliveEncoding = nil }
  }
  /// The body.
  public var body: ByteBuffer {
    didSet { keepAliveEncoding = nil }
  }
  /// The whole response encoded once for a keep-alive HTTP/1.1 `GET` (see ``prepared()``); dropped
  /// by any change to the response.
  public private(set) var keepAliveEncoding: ByteBuffer?

  public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
    self.status = status
    self.headers = headers
    self.body = body
    keepAliveEncoding = nil
  }

  /// The same response with its keep-alive HTTP/1.1 encoding worked out now, for a response
  /// served many times (the server writes those bytes as they are instead of encoding the response
  /// for every request). Other requests (HEAD, HTTP/1.0, a connection that closes) are encoded as
  /// usual.
  public func prepared() -> HTTPResponse {
    var copy = self
    var bytes = ByteBuffer()
    bytes.reserveCapacity(128 + body.readableBytes)
    encode(version: .http1_1, keepAlive: true, includeBody: true, into: &bytes)
    copy.keepAliveEncoding = bytes
    return copy
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
