import KiamShared
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Runs the agent's slow work (asking the server, the real metadata service) as child tasks of
/// this service, so nothing runs unstructured and graceful shutdown drains it. Handlers on the
/// event loop submit work and get a future; a full queue answers 503 at once.
final class WorkQueue: Service, Sendable {
  private struct Job: Sendable {
    let work: @Sendable () async -> HTTPResponse
    let promise: EventLoopPromise<HTTPResponse>
  }

  private let stream: AsyncStream<Job>
  private let continuation: AsyncStream<Job>.Continuation
  private let pending = Atomic<Int>(0)
  private let limit: Int

  init(limit: Int = 10_000) {
    (stream, continuation) = AsyncStream.makeStream(of: Job.self, bufferingPolicy: .unbounded)
    self.limit = limit
  }

  /// Runs `work` in the queue; its response completes the returned future on `eventLoop`.
  func submit(on eventLoop: any EventLoop, _ work: @escaping @Sendable () async -> HTTPResponse) -> EventLoopFuture<
    HTTPResponse
  > {
    let promise = eventLoop.makePromise(of: HTTPResponse.self)
    if pending.wrappingAdd(1, ordering: .relaxed).newValue > limit {
      pending.wrappingSubtract(1, ordering: .relaxed)
      promise.succeed(.error(.serviceUnavailable, "agent overloaded, try again"))
      return promise.futureResult
    }
    if case .terminated = continuation.yield(Job(work: work, promise: promise)) {
      pending.wrappingSubtract(1, ordering: .relaxed)
      promise.succeed(.error(.serviceUnavailable, "agent is shutting down"))
    }
    return promise.futureResult
  }

  func run() async throws {
    await withGracefulShutdownHandler {
      await withDiscardingTaskGroup { group in
        for await job in stream {
          group.addTask {
            let response = await job.work()
            self.pending.wrappingSubtract(1, ordering: .relaxed)
            job.promise.succeed(response)
          }
        }
      }
    } onGracefulShutdown: {
      self.continuation.finish()
    }
  }
}
