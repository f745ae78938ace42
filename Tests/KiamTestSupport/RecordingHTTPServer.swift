import Foundation
import Synchronization

/// A metadata service that records the request line of every request it gets (method and target,
/// byte for byte) and answers each with `200 ok`. Listens on 127.0.0.1, one connection at a time,
/// on a thread of its own.
public final class RecordingHTTPServer: @unchecked Sendable {
  public let port: Int
  private let listener: Int32
  private let lines = Mutex<[String]>([])
  private let running = Atomic<Bool>(true)
  private let finished = Atomic<Bool>(false)

  public init() throws {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard listener >= 0 else { throw TestSupportError("socket: \(errno)") }
    let bound = RawSocket.withAddress("127.0.0.1", port: 0) { bind(listener, $0, $1) }
    guard bound == 0, listen(listener, 64) == 0 else { throw TestSupportError("bind/listen: \(errno)") }
    var actual = sockaddr_in()
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &actual) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
    }
    self.listener = listener
    port = Int(UInt16(bigEndian: actual.sin_port))
    let thread = Thread { [self] in
      self.serve()
      self.finished.store(true, ordering: .relaxed)
    }
    thread.start()
  }

  /// Request lines received so far (`GET /latest/… HTTP/1.1`), oldest first.
  public var requestLines: [String] { lines.withLock { $0 } }

  /// Request lines other than the agent's own token requests (`PUT /latest/api/token`).
  public var proxiedRequestLines: [String] { requestLines.filter { !$0.hasPrefix("PUT /latest/api/token ") } }

  public func stop() async {
    running.store(false, ordering: .relaxed)
    while !finished.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
    close(listener)
  }

  private func serve() {
    var buffer = [UInt8](repeating: 0, count: 16384)
    while running.load(ordering: .relaxed) {
      var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
      guard poll(&descriptor, 1, 50) > 0 else { continue }
      let client = accept(listener, nil, nil)
      guard client >= 0 else { continue }
      var timeout = timeval(tv_sec: 2, tv_usec: 0)
      setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
      var received: [UInt8] = []
      // Requests on this connection until it closes: one head each (no bodies here).
      while running.load(ordering: .relaxed) {
        if let end = Self.find([13, 10, 13, 10], in: received) {
          let head = String(decoding: received[..<end], as: UTF8.self)
          received.removeFirst(end + 4)
          lines.withLock { $0.append(String(head.split(separator: "\r\n", maxSplits: 1).first ?? "")) }
          let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok".utf8)
          _ = answer.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
          continue
        }
        let count = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        received += buffer[..<count]
      }
      close(client)
    }
  }

  private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
    guard haystack.count >= needle.count else { return nil }
    for index in 0...(haystack.count - needle.count)
    where haystack[index..<(index + needle.count)].elementsEqual(needle) {
      return index
    }
    return nil
  }
}
