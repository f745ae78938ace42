import NIOCore

/// Closes connections that send nothing at first, are idle too long, or take too long to
/// deliver a request (slowloris). Sits in front of the HTTP decoder and sees raw bytes; the
/// connection's ``HTTPConnectionHandler`` (same channel, same event loop) tells it directly when a
/// request has been read and when its response was written. It also tells the connection's
/// ``ConnectionTable/Entry`` whether the connection is busy or waiting for a request.
final class ConnectionGuard: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer

  private let readTimeout: TimeAmount
  private let idleTimeout: TimeAmount
  private let firstByteTimeout: TimeAmount
  private let entry: ConnectionTable.Entry?
  private var readingSince: NIODeadline?
  private var lastActivity = NIODeadline.now()
  private var inFlight = 0
  private var sawFirstByte = false
  private var ticker: RepeatedTask?

  init(
    readTimeout: Duration, idleTimeout: Duration, firstByteTimeout: Duration? = nil, entry: ConnectionTable.Entry? = nil
  ) {
    self.readTimeout = .nanoseconds(readTimeout.nanoseconds)
    self.idleTimeout = .nanoseconds(idleTimeout.nanoseconds)
    self.firstByteTimeout = .nanoseconds((firstByteTimeout ?? idleTimeout).nanoseconds)
    self.entry = entry
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
    let shortest = min(readTimeout.nanoseconds, idleTimeout.nanoseconds, firstByteTimeout.nanoseconds)
    let interval = TimeAmount.nanoseconds(max(shortest / 4, 50_000_000))
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
    } else if readingSince == nil, inFlight == 0, now - lastActivity > (sawFirstByte ? idleTimeout : firstByteTimeout) {
      context.close(promise: nil)
    }
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    if readingSince == nil {
      readingSince = .now()
      sawFirstByte = true
      entry?.busy()
    }
    context.fireChannelRead(data)
  }

  /// A request has been read completely: the read timeout stops until the next byte arrives.
  /// Called on the channel's event loop.
  func requestRead() {
    readingSince = nil
    inFlight += 1
    // A pipelined request already buffered arrives without a new read: busy again.
    entry?.busy()
  }

  /// A response has been written. Called on the channel's event loop.
  func responseWritten() {
    inFlight = max(0, inFlight - 1)
    lastActivity = .now()
    if inFlight == 0, readingSince == nil { entry?.waiting() }
  }
}
