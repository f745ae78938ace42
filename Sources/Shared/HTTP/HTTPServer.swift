public import Logging
public import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// A small, hardened HTTP/1.1 server on SwiftNIO, run as a `Service`.
///
/// Used for the agent's metadata API and for `/metrics`. Requests are answered by an
/// ``HTTPRequestHandler`` on the connection's event loop; see ``HTTPServerConfiguration`` for the
/// limits. On graceful shutdown the listener closes, in-flight requests finish, then `run` returns.
///
/// ```swift
/// let server = HTTPServer(configuration: .init(host: "127.0.0.1", port: 0), handler: handler, logger: logger)
/// // in a ServiceGroup, or: try await server.run()
/// let address = try await server.listeningAddress
/// ```
public final class HTTPServer: Service, Sendable {
  private let configuration: HTTPServerConfiguration
  private let handler: any HTTPRequestHandler
  private let logger: Logger
  private let group: any EventLoopGroup
  private let bound = AsyncValue<SocketAddress>()
  private let connections: ConnectionTable
  private let events: (@Sendable (ConnectionEvent) -> Void)?

  /// What happened to a connection at the limits (for metrics).
  public enum ConnectionEvent: Sendable {
    /// Refused: every connection of its source was busy (`per_source`), or the server was full (`total`).
    case refused(reason: String)
    /// Closed to make room for a new connection from the same source.
    case replaced
  }

  /// Creates a server; nothing is bound until ``run()``.
  /// - Parameter events: Told when a connection is refused or replaced at the limits.
  public init(
    configuration: HTTPServerConfiguration,
    handler: any HTTPRequestHandler,
    logger: Logger,
    group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    events: (@Sendable (ConnectionEvent) -> Void)? = nil
  ) {
    self.configuration = configuration
    self.handler = handler
    self.logger = logger
    self.group = group
    self.events = events
    connections = ConnectionTable(
      limit: configuration.maxConnections, perSourceLimit: configuration.maxConnectionsPerSource)
  }

  /// The address the server listens on, once bound (throws if binding failed).
  public var listeningAddress: SocketAddress {
    get async throws { try await bound.value }
  }

  /// The number of open client connections.
  public var openConnections: Int { connections.count }

  public func run() async throws {
    let quiesce = ServerQuiescingHelper(group: group)
    let channel: any Channel
    do {
      channel = try await bind(quiesce: quiesce)
    } catch {
      let failure = KiamError(
        code: .listen,
        message: "cannot listen on \(HostPort.display(host: configuration.host, port: configuration.port))",
        cause: error
      )
      bound.fail(failure)
      throw failure
    }
    if let address = channel.localAddress {
      bound.succeed(address)
    }
    logger.debug("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
    // Serve until graceful shutdown (or cancellation), then drain.
    try? await gracefulShutdown()
    let drained = group.any().makePromise(of: Void.self)
    quiesce.initiateShutdown(promise: drained)
    try? await drained.futureResult.get()
  }

  private func bind(quiesce: ServerQuiescingHelper) async throws -> any Channel {
    let configuration = self.configuration
    let handler = self.handler
    let table = self.connections
    let events = self.events
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 4096)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .serverChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
        }
      }
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelOption(.maxMessagesPerRead, value: 16)
      .childChannelInitializer { channel in
        let source = channel.remoteAddress?.ipAddress.flatMap(CanonicalIP.normalize) ?? "unknown"
        let entry: ConnectionTable.Entry
        switch table.admit(channel, source: source) {
        case .failure(let error):
          events?(.refused(reason: error.refusal.rawValue))
          return Self.park(channel, table: table, for: configuration.refusedHoldTime)
        case .success(let admitted):
          entry = admitted.entry
          if let replaced = admitted.replaced {
            replaced.channel.close(promise: nil)
            events?(.replaced)
          }
        }
        channel.closeFuture.whenComplete { _ in table.remove(entry) }
        return channel.eventLoop.makeCompletedFuture {
          let sync = channel.pipeline.syncOperations
          let connectionGuard = ConnectionGuard(
            readTimeout: configuration.requestReadTimeout, idleTimeout: configuration.idleTimeout,
            firstByteTimeout: configuration.firstByteTimeout, entry: entry)
          try sync.addHandler(connectionGuard)
          var limits = NIOHTTPDecoderLimitConfiguration()
          // NIO's limits are only a backstop; our own check answers 431 for heads over the limit.
          limits.maxHeaderFieldSize = max(configuration.maxHeaderBytes * 4, 16 * 1024)
          limits.maxHeaderListSize = max(configuration.maxHeaderBytes * 4, 16 * 1024)
          limits.maxHeaderFieldCount = 100
          // NIO's decoder only; HTTPConnectionHandler does the rest (ordering of pipelined requests,
          // 400 for what the parser rejects, response encoding, closing on shutdown).
          try sync.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)))
          try sync.addHandler(
            HTTPConnectionHandler(
              handler: handler,
              connectionGuard: connectionGuard,
              maxHeaderBytes: configuration.maxHeaderBytes,
              maxBodyBytes: configuration.maxBodyBytes
            )
          )
        }
      }
    if configuration.host.isEmpty {
      // Every address: IPv6 any is dual-stack on Linux; fall back to IPv4 where IPv6 is off.
      do {
        return try await bootstrap.bind(host: "::", port: configuration.port).get()
      } catch {
        return try await bootstrap.bind(host: "0.0.0.0", port: configuration.port).get()
      }
    }
    return try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
  }

  /// A refused connection is held open, unread, for `time` before it is closed (up to
  /// ``ConnectionTable/parkLimit`` of them; beyond, it is closed at once): a client that
  /// reconnects the moment it is closed would otherwise make the refusals a storm that fills the
  /// accept queue every other pod's connections wait in.
  static func park(_ channel: any Channel, table: ConnectionTable, for time: Duration) -> EventLoopFuture<Void> {
    guard time > .zero, table.park() else { return channel.close() }
    channel.closeFuture.whenComplete { _ in table.unpark() }
    return channel.setOption(.autoRead, value: false).always { _ in
      channel.eventLoop.scheduleTask(in: .nanoseconds(time.nanoseconds)) { channel.close(promise: nil) }
    }
  }
}
