public import NIOCore
public import NIOHTTP1

extension HTTPResponse {
  /// Header fields the server frames itself and never copies from ``headers``.
  private static let framingFields: Set<String> = ["content-length", "transfer-encoding", "connection", "keep-alive"]

  /// Appends the response as HTTP/1.x bytes: status line, the valid fields of ``headers``,
  /// `Content-Length` (unless the status has no body: 1xx, 204, 304), `Connection: close` when the
  /// connection closes after it (`keep-alive` for an HTTP/1.0 client that keeps it open), then the
  /// body unless `includeBody` is false (a response to `HEAD`, which still tells the length).
  public func encode(version: HTTPVersion, keepAlive: Bool, includeBody: Bool, into buffer: inout ByteBuffer) {
    buffer.writeStaticString("HTTP/")
    buffer.writeString(String(version.major))
    buffer.writeStaticString(".")
    buffer.writeString(String(version.minor))
    buffer.writeStaticString(" ")
    buffer.writeString(String(status.code))
    buffer.writeStaticString(" ")
    let reason = status.reasonPhrase
    if Self.isFieldValue(reason) { buffer.writeString(reason) }
    buffer.writeStaticString("\r\n")
    for (name, value) in headers
    where Self.isToken(name) && Self.isFieldValue(value) && !Self.framingFields.contains(name.lowercased()) {
      buffer.writeString(name)
      buffer.writeStaticString(": ")
      buffer.writeString(value)
      buffer.writeStaticString("\r\n")
    }
    let hasBody = status.mayHaveResponseBody
    if hasBody {
      buffer.writeStaticString("Content-Length: ")
      buffer.writeString(String(body.readableBytes))
      buffer.writeStaticString("\r\n")
    }
    if !keepAlive {
      buffer.writeStaticString("Connection: close\r\n")
    } else if version.major == 1, version.minor == 0 {
      buffer.writeStaticString("Connection: keep-alive\r\n")
    }
    buffer.writeStaticString("\r\n")
    if hasBody, includeBody {
      buffer.writeImmutableBuffer(body)
    }
  }

  /// RFC 9110 token characters (a field name).
  static func isToken(_ text: String) -> Bool {
    guard !text.isEmpty else { return false }
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"):
        continue
      case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
        UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
        UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
        continue
      default:
        return false
      }
    }
    return true
  }

  /// A field value (or reason phrase) that cannot end the line it is on: no CR, LF or NUL.
  static func isFieldValue(_ text: String) -> Bool {
    !text.utf8.contains { $0 == 0x0D || $0 == 0x0A || $0 == 0x00 }
  }
}
