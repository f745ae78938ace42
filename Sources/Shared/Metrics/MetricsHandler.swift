public import NIOCore
import NIOHTTP1
import Prometheus

/// Serves `GET /metrics` in the Prometheus text format: the registry plus process metrics.
public struct MetricsHandler: HTTPRequestHandler {
  private let metrics: KiamMetrics

  public init(metrics: KiamMetrics) {
    self.metrics = metrics
  }

  public func handle(_ request: HTTPRequest, eventLoop: any EventLoop) -> HTTPResponseResult {
    guard request.path == "/metrics" else {
      return .immediate(.error(.notFound, "404 page not found"))
    }
    guard request.method == .GET || request.method == .HEAD else {
      return .immediate(.error(.methodNotAllowed, "method not allowed"))
    }
    var buffer = ByteBuffer()
    var bytes: [UInt8] = []
    bytes.reserveCapacity(16 * 1024)
    metrics.emit(into: &bytes)
    buffer.writeBytes(bytes)
    buffer.writeString(ProcessMetrics.exposition())
    return .immediate(
      HTTPResponse(
        status: .ok,
        headers: ["Content-Type": "text/plain; version=0.0.4; charset=utf-8"],
        body: buffer))
  }
}
