public import NIOCore
public import NIOHTTP1

/// A complete HTTP request as handed to an ``HTTPRequestHandler``.
public struct HTTPRequest: Sendable {
  /// The request method.
  public var method: HTTPMethod
  /// The request target as sent (`/latest/meta-data/?x=1`).
  public var uri: String
  /// The request headers.
  public var headers: HTTPHeaders
  /// The request body, if any.
  public var body: ByteBuffer?
  /// 0 for the first request on its connection, then 1, 2, … (keep-alive).
  public var connectionRequestIndex: Int
  /// State shared by the requests of this connection, with its addresses.
  public var connection: HTTPConnectionContext

  /// The TCP peer, i.e. the caller.
  public var remoteAddress: SocketAddress? { connection.remoteAddress }
  /// The local address the connection arrived on.
  public var localAddress: SocketAddress? { connection.localAddress }

  public init(
    method: HTTPMethod,
    uri: String,
    headers: HTTPHeaders = [:],
    body: ByteBuffer? = nil,
    connectionRequestIndex: Int = 0,
    connection: HTTPConnectionContext = HTTPConnectionContext()
  ) {
    self.method = method
    self.uri = uri
    self.headers = headers
    self.body = body
    self.connectionRequestIndex = connectionRequestIndex
    self.connection = connection
  }

  /// The path part of the URI (before `?`).
  public var path: Substring {
    if let q = uri.firstIndex(of: "?") { return uri[..<q] }
    return uri[...]
  }

  /// The raw query string (after `?`), if any.
  public var query: Substring? {
    guard let q = uri.firstIndex(of: "?") else { return nil }
    return uri[uri.index(after: q)...]
  }

  /// The first value of a query parameter, percent-decoded.
  public func queryValue(_ name: String) -> String? {
    guard let query else { return nil }
    for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
      let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      if PercentEncoding.decode(parts[0]) == name {
        return parts.count > 1 ? PercentEncoding.decode(parts[1]) : ""
      }
    }
    return nil
  }
}

/// Percent-decoding of URL components.
public enum PercentEncoding {
  /// Decodes `%XX` escapes and `+` (as space, in query strings); invalid escapes are kept verbatim.
  public static func decode<S: StringProtocol>(_ text: S, plusAsSpace: Bool = true) -> String {
    String(decoding: bytes(text, plusAsSpace: plusAsSpace, strict: false)!, as: UTF8.self)
  }

  /// Decodes a URL path strictly: nil for a `%` not followed by two hex digits, for bytes that
  /// are not UTF-8, and for control characters (NUL, CR, LF, DEL…), encoded or not. `+` stays.
  public static func decodePath<S: StringProtocol>(_ text: S) -> String? {
    guard let bytes = bytes(text, plusAsSpace: false, strict: true), !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F })
    else {
      return nil
    }
    return String(validating: bytes, as: UTF8.self)
  }

  /// The decoded bytes; with `strict`, nil at the first `%` that does not start an escape (else
  /// such a `%` is kept).
  private static func bytes<S: StringProtocol>(_ text: S, plusAsSpace: Bool, strict: Bool) -> [UInt8]? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var it = Array(text.utf8)[...]
    while let c = it.popFirst() {
      if c == UInt8(ascii: "%"), it.count >= 2, let h = hex(it[it.startIndex]), let l = hex(it[it.startIndex + 1]) {
        bytes.append(h << 4 | l)
        it = it.dropFirst(2)
      } else if c == UInt8(ascii: "%") && strict {
        return nil
      } else if c == UInt8(ascii: "+") && plusAsSpace {
        bytes.append(UInt8(ascii: " "))
      } else {
        bytes.append(c)
      }
    }
    return bytes
  }

  /// Whether every `%` of `text` starts a two-digit hex escape.
  public static func isWellFormed<S: StringProtocol>(_ text: S) -> Bool {
    let bytes = Array(text.utf8)
    var index = 0
    while index < bytes.count {
      if bytes[index] == UInt8(ascii: "%") {
        guard index + 2 < bytes.count, hex(bytes[index + 1]) != nil, hex(bytes[index + 2]) != nil else { return false }
        index += 3
      } else {
        index += 1
      }
    }
    return true
  }

  /// Encodes a decoded path for a request target: unreserved characters, sub-delimiters, `:`,
  /// `@` and `/` as they are, every other byte of its UTF-8 as `%XX`.
  public static func encodePath(_ path: String) -> String {
    let plain = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/".utf8)
    let digits = Array("0123456789ABCDEF".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(path.utf8.count)
    for byte in path.utf8 {
      if plain.contains(byte) {
        out.append(byte)
      } else {
        out += [UInt8(ascii: "%"), digits[Int(byte >> 4)], digits[Int(byte & 0xF)]]
      }
    }
    return String(decoding: out, as: UTF8.self)
  }

  private static func hex(_ c: UInt8) -> UInt8? {
    switch c {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
