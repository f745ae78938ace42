import NIOCore

/// Closes connections that are idle too long or that take too long to deliver a request
/// (slowloris). Sits in front of the HTTP decoder and sees raw bytes.
final class ConnectionGuard: ChannelDuplexHandler {
  typealias InboundIn = ByteBuffer
  typealias InboundOut = ByteBuffer
  typealias OutboundIn = Any
  typealias OutboundOut = Any

  /// Sent outbound by the HTTP handler when a request has been read completely.
  struct RequestRead {}
  /// Sent outbound by the HTTP handler when a response has been written.
  struct ResponseWritten {}

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

  func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
    switch event {
    case is RequestRead:
      readingSince = nil
      inFlight += 1
      promise?.succeed(())
    case is ResponseWritten:
      inFlight = max(0, inFlight - 1)
      lastActivity = .now()
      promise?.succeed(())
    default:
      context.triggerUserOutboundEvent(event, promise: promise)
    }
  }
}
