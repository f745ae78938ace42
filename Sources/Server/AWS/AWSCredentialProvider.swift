import KiamShared
import Synchronization

/// A source of the server's own AWS credentials.
public protocol AWSCredentialProvider: Sendable {
  /// For logs: `environment`, `web identity arn:…`, `instance metadata`, ….
  var name: String { get }
  /// Credentials valid now (refreshed before they expire).
  func accessKey() async throws -> AWSAccessKey
}

/// Long-lived keys (environment variables, a shared credentials profile).
struct StaticCredentialProvider: AWSCredentialProvider {
  let name: String
  let key: AWSAccessKey
  func accessKey() async throws -> AWSAccessKey { key }
}

/// Wraps a fetch of expiring credentials: cached until `refreshBefore` ahead of expiry, one fetch
/// at a time; if a refresh fails while the old credentials are still valid, the old ones are used.
final class RefreshingCredentialProvider: AWSCredentialProvider {
  let name: String
  private let fetch: @Sendable () async throws -> AWSAccessKey
  private let refreshBefore: Double
  private struct State {
    var cached: AWSAccessKey?
    var fetching = false
    var waiters = Waiters<Result<AWSAccessKey, any Error>>()
  }
  private let state = Mutex(State())

  init(
    name: String, refreshBefore: Duration = .seconds(300), fetch: @escaping @Sendable () async throws -> AWSAccessKey
  ) {
    self.name = name
    self.fetch = fetch
    self.refreshBefore = refreshBefore.seconds
  }

  func accessKey() async throws -> AWSAccessKey {
    let now = WallClock.system.nowPrecise()
    enum Step {
      case use(AWSAccessKey)
      case fetch
      case wait
    }
    let step: Step = state.withLock { state in
      if let cached = state.cached, (cached.expiration ?? .infinity) - now > refreshBefore { return .use(cached) }
      if state.fetching { return .wait }
      state.fetching = true
      return .fetch
    }
    switch step {
    case .use(let key):
      return key
    case .wait:
      let id = state.withLock { $0.waiters.makeID() }
      let result = await Waiters.wait { continuation in
        state.withLock { state in
          if !state.fetching, let cached = state.cached { return .success(cached) }
          state.waiters.add(continuation, id: id)
          return nil
        }
      } cancel: {
        // The caller gave up: stop waiting; the fetch goes on for the others.
        state.withLock { $0.waiters.remove(id) }.map { ($0, .failure(CancellationError())) }
      }
      return try result.get()
    case .fetch:
      let result: Result<AWSAccessKey, any Error>
      do {
        result = .success(try await fetch())
      } catch {
        // Keep using credentials that have not expired yet.
        if let cached = state.withLock({ $0.cached }), (cached.expiration ?? .infinity) > now + 10 {
          result = .success(cached)
        } else {
          result = .failure(error)
        }
      }
      let waiters = state.withLock { state in
        if case .success(let key) = result { state.cached = key }
        state.fetching = false
        return state.waiters.removeAll()
      }
      for waiter in waiters { waiter.resume(returning: result) }
      return try result.get()
    }
  }
}
