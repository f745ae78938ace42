public import NIOCore
import Synchronization

/// State that lives as long as one client connection: handed to every request on it, so a
/// handler can remember what it verified about the caller for the connection's later requests
/// (keep-alive). A new connection always starts empty.
public final class HTTPConnectionContext: Sendable {
  private let state = Mutex<(requests: Int, verified: String?, memo: (any Sendable)?)>((0, nil, nil))

  /// The peer of the connection.
  public let remoteAddress: SocketAddress?
  /// The local address the connection arrived on.
  public let localAddress: SocketAddress?
  /// The peer's IP address in canonical text form (``CanonicalIP``), worked out once.
  public let remoteIP: String?

  /// A context with nothing verified yet.
  public init(remoteAddress: SocketAddress? = nil, localAddress: SocketAddress? = nil) {
    self.remoteAddress = remoteAddress
    self.localAddress = localAddress
    remoteIP = remoteAddress?.ipAddress.flatMap(CanonicalIP.normalize)
  }

  /// What the handler verified about the caller on this connection, if anything.
  public var verified: String? {
    get { state.withLock { $0.verified } }
    set { state.withLock { $0.verified = newValue } }
  }

  /// Whatever the handler keeps to answer the connection's next requests faster (its own type).
  public var memo: (any Sendable)? {
    get { state.withLock { $0.memo } }
    set { state.withLock { $0.memo = newValue } }
  }

  /// ``verified`` and ``memo`` read together (one lock on the hot path).
  public var remembered: (verified: String?, memo: (any Sendable)?) {
    state.withLock { ($0.verified, $0.memo) }
  }

  /// Counts a request and returns its index on the connection (0 for the first).
  func nextRequestIndex() -> Int {
    state.withLock { state in
      defer { state.requests += 1 }
      return state.requests
    }
  }
}
