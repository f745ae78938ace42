public import GRPCCore
import Prometheus

/// Records go-grpc-prometheus' server metrics (`grpc_server_started_total`,
/// `grpc_server_handled_total{grpc_code}`, `grpc_server_msg_received_total`,
/// `grpc_server_msg_sent_total`) for kiam's unary RPCs.
public struct MetricsServerInterceptor: ServerInterceptor {
  private let metrics: KiamMetrics

  public init(metrics: KiamMetrics) {
    self.metrics = metrics
  }

  public func intercept<Input: Sendable, Output: Sendable>(
    request: StreamingServerRequest<Input>,
    context: ServerContext,
    next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
  ) async throws -> StreamingServerResponse<Output> {
    let counters = metrics.grpc(
      .server, service: context.descriptor.service.fullyQualifiedService, method: context.descriptor.method)
    counters.started.increment()
    counters.messagesReceived.increment()
    do {
      var response = try await next(request, context)
      switch response.accepted {
      case .success(var contents):
        let producer = contents.producer
        contents.producer = { writer in
          do {
            let trailers = try await producer(writer)
            counters.messagesSent.increment()
            counters.handled(code: "OK").increment()
            return trailers
          } catch {
            counters.handled(code: ((error as? RPCError)?.code ?? .unknown).goName).increment()
            throw error
          }
        }
        response.accepted = .success(contents)
      case .failure(let error):
        counters.handled(code: error.code.goName).increment()
      }
      return response
    } catch {
      counters.handled(code: ((error as? RPCError)?.code ?? .unknown).goName).increment()
      throw error
    }
  }
}
