import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A stand-in Kubernetes API server speaking the real wire format, for tests and benchmarks:
/// HTTPS (certificate from a ``TestCA``), bearer tokens, paginated lists with `continue`,
/// chunked JSON watch streams (each event split over two chunks) resumed by resourceVersion,
/// bookmarks, 410 Gone (as HTTP status for stale `continue` tokens and as an `ERROR` event for
/// stale watch versions), dropped streams, injected latency, 401/403, TokenReviews and Events.
public final class KubernetesAPITestServer: Sendable {
  /// A recorded `core/v1` Event write.
  public struct RecordedEvent: Sendable {
    public let verb: String
    public let namespace: String
    public let name: String
    public let reason: String?
    public let message: String?
    public let count: Int?
    public let involvedName: String?
    public let json: Data
  }

  /// What a TokenReview returns for a token.
  public struct TokenIdentity: Sendable {
    public var username: String
    public var extra: [String: [String]]
    public var audiences: [String]
    public init(username: String, extra: [String: [String]], audiences: [String] = ["kiam"]) {
      self.username = username
      self.extra = extra
      self.audiences = audiences
    }
  }

  struct HistoryEntry {
    let resourceVersion: Int
    let resource: String
    let line: Data
  }

  final class Watcher: Sendable {
    let id: Int
    let channel: any Channel
    let resource: String
    let bookmarks: Bool
    init(id: Int, channel: any Channel, resource: String, bookmarks: Bool) {
      self.id = id
      self.channel = channel
      self.resource = resource
      self.bookmarks = bookmarks
    }
  }

  struct State {
    var resourceVersion = 1000
    var pods: [String: (TestPod, Int)] = [:]
    var namespaces: [String: (TestNamespace, Int)] = [:]
    var history: [HistoryEntry] = []
    var compactedThrough = 0
    var watchers: [Int: Watcher] = [:]
    var nextWatcherID = 0
    var acceptedTokens: Set<String>
    var forbidden: Set<String> = []
    var latency: Duration = .zero
    var tokenReviews: [String: TokenIdentity] = [:]
    var events: [RecordedEvent] = []
    var requests: [String] = []
    var watchRequests = 0
    var listRequests = 0
    /// Sorted keys per resource, valid for the resourceVersion they were made at (paged lists of
    /// large states would otherwise sort everything for every page).
    var sortedKeys: [String: (resourceVersion: Int, keys: [String])] = [:]
  }

  let state: Mutex<State>
  private let tls: NIOSSLContext?
  private let group: MultiThreadedEventLoopGroup
  private let serverChannel = Mutex<(any Channel)?>(nil)

  /// - Parameters:
  ///   - certificate: Server certificate and key; nil serves plain HTTP.
  ///   - tokens: Accepted bearer tokens; empty accepts any request.
  public init(certificate: TestLeaf?, tokens: Set<String> = []) throws {
    state = Mutex(State(acceptedTokens: tokens))
    if let certificate {
      let configuration = TLSConfiguration.makeServerConfiguration(
        certificateChain: [
          .certificate(try NIOSSLCertificate(bytes: Array(certificate.certificatePEM.utf8), format: .pem))
        ],
        privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.keyPEM.utf8), format: .pem)))
      tls = try NIOSSLContext(configuration: configuration)
    } else {
      tls = nil
    }
    group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
  }

  /// Starts listening on 127.0.0.1 (port 0 picks one); returns the port.
  @discardableResult
  public func start(port: Int = 0, host: String = "127.0.0.1") async throws -> Int {
    let tls = self.tls
    let channel = try await ServerBootstrap(group: group)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { [self] channel in
        channel.eventLoop.makeCompletedFuture {
          if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(APIHandler(server: self))
        }
      }
      .bind(host: host, port: port).get()
    serverChannel.withLock { $0 = channel }
    return channel.localAddress?.port ?? port
  }

  /// Stops listening and closes every connection.
  public func stop() async {
    let channel = serverChannel.withLock { $0 }
    try? await channel?.close()
    dropWatches()
    try? await group.shutdownGracefully()
  }

  // MARK: Data

  /// Adds or replaces a pod, notifying watchers (ADDED or MODIFIED).
  @discardableResult
  public func upsertPod(_ pod: TestPod) -> Int {
    state.withLock { state in
      state.resourceVersion += 1
      let rv = state.resourceVersion
      let type = state.pods[pod.key] == nil ? "ADDED" : "MODIFIED"
      state.pods[pod.key] = (pod, rv)
      Self.emit(&state, resource: "pods", type: type, object: pod.json(resourceVersion: rv), rv: rv)
      return rv
    }
  }

  /// Adds many pods without notifying watchers one by one (for large initial states).
  public func seedPods(_ pods: [TestPod]) {
    state.withLock { state in
      for pod in pods {
        state.resourceVersion += 1
        state.pods[pod.key] = (pod, state.resourceVersion)
      }
    }
  }

  /// Deletes a pod, notifying watchers (DELETED with the last state).
  public func deletePod(namespace: String, name: String) {
    state.withLock { state in
      guard let (pod, _) = state.pods.removeValue(forKey: "\(namespace)/\(name)") else { return }
      state.resourceVersion += 1
      let rv = state.resourceVersion
      Self.emit(&state, resource: "pods", type: "DELETED", object: pod.json(resourceVersion: rv), rv: rv)
    }
  }

  /// Adds or replaces a namespace.
  public func upsertNamespace(_ namespace: TestNamespace) {
    state.withLock { state in
      state.resourceVersion += 1
      let rv = state.resourceVersion
      let type = state.namespaces[namespace.name] == nil ? "ADDED" : "MODIFIED"
      state.namespaces[namespace.name] = (namespace, rv)
      Self.emit(&state, resource: "namespaces", type: type, object: namespace.json(resourceVersion: rv), rv: rv)
    }
  }

  public func pod(_ key: String) -> TestPod? { state.withLock { $0.pods[key]?.0 } }

  // MARK: Faults

  /// Closes every open watch stream abruptly (as when the API server restarts or a proxy drops).
  public func dropWatches() {
    let watchers = state.withLock { state in
      let all = Array(state.watchers.values)
      state.watchers.removeAll()
      return all
    }
    for watcher in watchers { watcher.channel.close(promise: nil) }
  }

  /// Forgets the event history up to now: watches resuming from an older version get 410 Gone.
  public func compact() {
    state.withLock { state in
      state.compactedThrough = state.resourceVersion
      state.history.removeAll()
    }
  }

  /// Sends a BOOKMARK with the current resourceVersion to every watcher that asked for them.
  public func sendBookmarks() {
    state.withLock { state in
      let rv = state.resourceVersion
      for watcher in state.watchers.values where watcher.bookmarks {
        let kind = watcher.resource == "pods" ? "Pod" : "Namespace"
        let object: [String: Any] = ["kind": kind, "apiVersion": "v1", "metadata": ["resourceVersion": String(rv)]]
        Self.write(Self.line(type: "BOOKMARK", object: object), to: watcher.channel)
      }
    }
  }

  /// Only these tokens are accepted from now on (others get 401).
  public func setAcceptedTokens(_ tokens: Set<String>) { state.withLock { $0.acceptedTokens = tokens } }

  /// `verb resource` pairs answered 403, e.g. `["list pods"]`.
  public func setForbidden(_ rules: Set<String>) { state.withLock { $0.forbidden = rules } }

  /// Delay before every response.
  public func setLatency(_ latency: Duration) { state.withLock { $0.latency = latency } }

  /// What TokenReview answers for `token` (unknown tokens are not authenticated).
  public func setTokenIdentity(_ token: String, _ identity: TokenIdentity) {
    state.withLock { $0.tokenReviews[token] = identity }
  }

  // MARK: Observation

  public var recordedEvents: [RecordedEvent] { state.withLock { $0.events } }
  public var requestLog: [String] { state.withLock { $0.requests } }
  public var openWatches: Int { state.withLock { $0.watchers.count } }
  public var watchRequestCount: Int { state.withLock { $0.watchRequests } }
  public var listRequestCount: Int { state.withLock { $0.listRequests } }
  public var currentResourceVersion: Int { state.withLock { $0.resourceVersion } }

  // MARK: Wire helpers

  static func line(type: String, object: [String: Any]) -> Data {
    var data = (try? JSONSerialization.data(withJSONObject: ["type": type, "object": object])) ?? Data()
    data.append(UInt8(ascii: "\n"))
    return data
  }

  private static func emit(_ state: inout State, resource: String, type: String, object: [String: Any], rv: Int) {
    let line = line(type: type, object: object)
    state.history.append(HistoryEntry(resourceVersion: rv, resource: resource, line: line))
    if state.history.count > 100_000 { state.history.removeFirst(state.history.count - 100_000) }
    for watcher in state.watchers.values where watcher.resource == resource {
      write(line, to: watcher.channel)
    }
  }

  /// Writes an event line as two chunks, so clients must reassemble lines.
  static func write(_ line: Data, to channel: any Channel) {
    let cut = line.count / 2
    channel.write(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: line.prefix(cut)))), promise: nil)
    channel.flush()
    channel.writeAndFlush(
      HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: line.dropFirst(cut)))), promise: nil)
  }
}
