import Foundation
import Synchronization

/// Supplies the bearer token: a fixed one, or a file re-read periodically and whenever the API
/// server answers 401 (projected service-account tokens rotate about hourly).
final class BearerTokenSource: Sendable {
  private struct State {
    var token: String?
    var readAt: ContinuousClock.Instant?
  }
  private let fixed: String?
  private let file: String?
  private let maxAge: Duration
  private let state = Mutex(State())

  init(token: String?, file: String?, maxAge: Duration = .seconds(60)) {
    self.fixed = token
    self.file = file
    self.maxAge = maxAge
  }

  var isConfigured: Bool { fixed != nil || file != nil }

  /// The token to send now.
  func current() -> String? {
    guard let file else { return fixed }
    let now = ContinuousClock.now
    if let cached = state.withLock({ s -> String? in
      guard let readAt = s.readAt, now - readAt < maxAge else { return nil }
      return s.token
    }) {
      return cached
    }
    let token = (try? String(contentsOfFile: file, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    state.withLock { s in
      if let token, !token.isEmpty { s.token = token }
      s.readAt = now
    }
    return state.withLock { $0.token } ?? fixed
  }

  /// Forgets the cached token so the next request re-reads the file.
  func invalidate() {
    state.withLock { $0.readAt = nil }
  }
}
