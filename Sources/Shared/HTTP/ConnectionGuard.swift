import NIOCore

/// Closes connections that are idle too long or that take too long to deliver a request
/// (slowloris). Sits in front of the HTTP decoder and sees raw bytes; the connection's
/// ``HTTPConnectionHandler`` (same channel, same event loop) tells it directly when a request has
/// been read and when its response was written.
final class ConnectionGuard: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private let readTimeout: TimeAmount
  private let idleTimeout: TimeAmount
  private var readingSince: NIODeadline?
  private var lastActivity = NIODeadline.now()
  private var inFlight = 0
  private var ticker: RepeatedTask?

  init(readTimeout: Duration, idleTimeout: Duration) {
    self.readTimeout = .nanoseconds(readTimeout.nanoseconds)
    self.idleTimeout = .nanoseconds(idleTimeout.nanoseconds)
  }

  func handlerAdded(context: ChannelHandlerContext) {
    if context.channel.isActive { start(context: context) }
  }

  func channelActive(context: ChannelHandlerContext) {
    start(context: context)
    context.fireChannelActive()
  }

  func handlerRemoved(context: ChannelHandlerContext) {
    ticker?.cancel()
    ticker = nil
  }

  func channelInactive(context: ChannelHandlerContext) {
    ticker?.cancel()
    ticker = nil
    context.fireChannelInactive()
  }

  private func start(context: ChannelHandlerContext) {
    guard ticker == nil else { return }
    lastActivity = .now()
    let interval = TimeAmount.nanoseconds(max(min(readTimeout.nanoseconds, idleTimeout.nanoseconds) / 4, 50_000_000))
    let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
    ticker = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
      let (handler, context) = bound.value
      handler.check(context: context)
    }
  }

  private func check(context: ChannelHandlerContext) {
    let now = NIODeadline.now()
    if let since = readingSince, now - since > readTimeout {
      context.close(promise: nil)
    } else if readingSince == nil, inFlight == 0, now - lastActivity > idleTimeout {
      context.close(promise: nil)
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if readingSince == nil { readingSince = .now() }
    context.fireChannelRead(data)
  }

  /// A request has been read completely: the read timeout stops until the next byte arrives.
  /// Called on the channel's event loop.
  func requestRead() {
    readingSince = nil
    inFlight += 1
  }

  /// A response has been written. Called on the channel's event loop.
  func responseWritten() {
    inFlight = max(0, inFlight - 1)
    lastActivity = .now()
  }
}
