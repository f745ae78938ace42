import Foundation

/// A blocking TCP client for tests that need byte-level control (slow requests, oversize heads).
public final class RawSocket {
  public let fd: Int32

  /// Connects to `host:port` (IPv4), from `source` when given (another pod's address).
  public init(source: String? = nil, host: String = "127.0.0.1", port: Int, receiveTimeout: Double = 5) throws {
    fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw TestSupportError("socket failed") }
    if let source {
      guard Self.withAddress(source, port: 0, { bind(fd, $0, $1) }) == 0 else {
        close(fd)
        throw TestSupportError("bind to \(source) failed: \(String(cString: strerror(errno)))")
      }
    }
    guard Self.withAddress(host, port: port, { connect(fd, $0, $1) }) == 0 else {
      close(fd)
      throw TestSupportError("connect to \(host):\(port) failed: \(String(cString: strerror(errno)))")
    }
    var tv = timeval(tv_sec: Int(receiveTimeout), tv_usec: Int((receiveTimeout - Double(Int(receiveTimeout))) * 1e6))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(fd) }

  /// Calls `body` with the IPv4 socket address `host:port`.
  public static func withAddress(_ host: String, port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32)
    -> Int32
  {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr(host)
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
  }

  public func send(_ text: String) throws {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
      let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
      if n <= 0 { throw TestSupportError("send failed: \(String(cString: strerror(errno)))") }
      offset += n
    }
  }

  /// Reads until the peer closes, the timeout passes or `until` appears; returns what arrived.
  public func receive(until marker: String? = nil) -> String {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { break }
      data.append(contentsOf: buffer[0..<n])
      if let marker, String(decoding: data, as: UTF8.self).contains(marker) { break }
    }
    return String(decoding: data, as: UTF8.self)
  }

  /// Reads one complete HTTP response with a Content-Length body.
  public func receiveResponse() -> String {
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      let text = String(decoding: data, as: UTF8.self)
      if let headEnd = text.range(of: "\r\n\r\n") {
        let head = text[..<headEnd.lowerBound].lowercased()
        var length = 0
        for line in head.split(separator: "\r\n") where line.hasPrefix("content-length:") {
          length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        if text.utf8.count - text.utf8.distance(from: text.startIndex, to: headEnd.upperBound) >= length {
          return text
        }
      }
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n <= 0 { return text }
      data.append(contentsOf: buffer[0..<n])
    }
  }

  /// True when the peer has closed the connection (a read returns 0 within `timeout`).
  public func isClosedByPeer() -> Bool {
    var buffer = [UInt8](repeating: 0, count: 1024)
    while true {
      let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
      if n == 0 { return true }
      if n < 0 { return errno == ECONNRESET }
    }
  }
}
