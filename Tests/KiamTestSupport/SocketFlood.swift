import Foundation
import Synchronization

/// One misbehaving pod: many TCP connections from one source address to a server, kept up on a
/// thread of their own (every connection the server closes is opened again at once).
///
/// - ``Mode/silent``: connect and never send a byte;
/// - ``Mode/keepAlive(_:)``: send one request, read its answer, then sit idle on the connection;
/// - ``Mode/slowHeaders``: send the request head one byte a second.
public final class SocketFlood: @unchecked Sendable {
  public enum Mode: Sendable {
    case silent
    case keepAlive(String)
    case slowHeaders
  }

  private let host: String
  private let port: Int
  private let source: String?
  private let namespace: String?
  private let count: Int
  private let mode: Mode
  private let running = Atomic<Bool>(false)
  private let finished = Atomic<Bool>(false)
  private let opened = Atomic<Int>(0)
  private let closedByServer = Atomic<Int>(0)

  /// - Parameters:
  ///   - source: The local address the connections come from (another pod's IP), or the
  ///     system's choice.
  ///   - namespace: A network namespace (`ip netns` name) the connections are made in: a pod's.
  ///   - count: How many connections to keep open at once.
  public init(
    host: String = "127.0.0.1", port: Int, source: String? = nil, namespace: String? = nil, count: Int, mode: Mode
  ) {
    self.host = host
    self.port = port
    self.source = source
    self.namespace = namespace
    self.count = count
    self.mode = mode
  }

  /// Connections opened so far, and those the server closed.
  public var stats: (opened: Int, closedByServer: Int) {
    (opened.load(ordering: .relaxed), closedByServer.load(ordering: .relaxed))
  }

  /// Starts flooding on a thread of its own.
  public func start() {
    running.store(true, ordering: .relaxed)
    let thread = Thread { [self] in
      if let namespace, !Self.enter(namespace: namespace) {
        self.finished.store(true, ordering: .relaxed)
        return
      }
      self.loop()
      self.finished.store(true, ordering: .relaxed)
    }
    thread.stackSize = 1 << 20
    thread.start()
  }

  /// Stops and closes every connection.
  public func stop() async {
    running.store(false, ordering: .relaxed)
    while !finished.load(ordering: .relaxed) { try? await Task.sleep(for: .milliseconds(20)) }
  }

  private struct Connection {
    var fd: Int32
    var sent = 0
    var lastSend = Date.distantPast
  }

  private func loop() {
    var connections: [Connection] = []
    let request: [UInt8]
    switch mode {
    case .silent: request = []
    case .keepAlive(let text): request = Array(text.utf8)
    case .slowHeaders: request = Array("GET /ping HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n".utf8)
    }
    var buffer = [UInt8](repeating: 0, count: 4096)
    while running.load(ordering: .relaxed) {
      // Keep `count` connections open.
      var attempts = 0
      while connections.count < count && attempts < 512 && running.load(ordering: .relaxed) {
        attempts += 1
        guard let fd = connect() else { break }
        opened.add(1, ordering: .relaxed)
        var connection = Connection(fd: fd)
        if case .keepAlive = mode {
          _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
          connection.sent = request.count
        }
        connections.append(connection)
      }
      // Slow headers: one more byte a second on every connection.
      if case .slowHeaders = mode {
        let now = Date()
        for index in connections.indices where now.timeIntervalSince(connections[index].lastSend) >= 1 {
          let byte = request[connections[index].sent % request.count]
          _ = withUnsafeBytes(of: byte) {
            send(connections[index].fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
          }
          connections[index].sent += 1
          connections[index].lastSend = now
        }
      }
      // Read what the server sent; drop what it closed.
      var descriptors = connections.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
      _ = poll(&descriptors, nfds_t(descriptors.count), 20)
      var alive: [Connection] = []
      alive.reserveCapacity(connections.count)
      for (index, connection) in connections.enumerated() {
        if descriptors[index].revents != 0 {
          let read = buffer.withUnsafeMutableBytes {
            recv(connection.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT))
          }
          if read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            close(connection.fd)
            closedByServer.add(1, ordering: .relaxed)
            continue
          }
        }
        alive.append(connection)
      }
      connections = alive
    }
    for connection in connections { close(connection.fd) }
  }

  /// Moves the calling thread into a network namespace (`setns(2)`; sockets it opens then live
  /// there). Glibc's module does not declare `setns`, so it is looked up.
  private static func enter(namespace: String) -> Bool {
    typealias SetNS = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(nil, "setns") else { return false }
    let fd = open("/var/run/netns/\(namespace)", O_RDONLY)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let cloneNewNet: Int32 = 0x4000_0000
    return unsafeBitCast(symbol, to: SetNS.self)(fd, cloneNewNet) == 0
  }

  /// A connected socket from `source`, or nil.
  private func connect() -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    let bound = source.map { source in RawSocket.withAddress(source, port: 0) { bind(fd, $0, $1) } } ?? 0
    let connected = RawSocket.withAddress(host, port: port) { Foundation.connect(fd, $0, $1) }
    guard bound == 0, connected == 0 else {
      close(fd)
      return nil
    }
    return fd
  }
}
