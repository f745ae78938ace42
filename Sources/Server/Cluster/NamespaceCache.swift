import KiamShared
import Synchronization

/// What the server keeps of a namespace: its `iam.amazonaws.com/permitted` expression, compiled
/// once for the server's matching mode.
public struct NamespaceRecord: Sendable {
  public let name: String
  /// The raw annotation, nil when absent.
  public let permitted: String?
  /// The compiled expression, or why it does not compile.
  public let compiled: Result<GoRegexp, KiamError>?

  public init(name: String, permitted: String?, strict: Bool) {
    self.name = name
    self.permitted = permitted
    if let permitted, !permitted.isEmpty {
      compiled = Result { try GoRegexp(strict ? "^(?:\(permitted))$" : permitted) }
        .mapError { $0 as? KiamError ?? KiamError(code: .invalidInput, message: "\($0)") }
    } else {
      compiled = nil
    }
  }
}

/// Every namespace of the cluster.
public final class NamespaceCache: Sendable {
  private struct State {
    var namespaces: [String: NamespaceRecord] = [:]
    var synced = false
  }
  private let state = Mutex(State())
  private let observers = Mutex<[@Sendable () -> Void]>([])
  /// Whether `permitted` must match the whole ARN.
  public let strict: Bool

  public init(strict: Bool) {
    self.strict = strict
  }

  public var isSynced: Bool { state.withLock { $0.synced } }
  public var count: Int { state.withLock { $0.namespaces.count } }

  public func namespace(_ name: String) -> NamespaceRecord? { state.withLock { $0.namespaces[name] } }

  /// Inserts or replaces a namespace from its name and annotation.
  public func upsert(name: String, permitted: String?) {
    let changed: Bool = state.withLock { state in
      if let old = state.namespaces[name], old.permitted == permitted { return false }
      state.namespaces[name] = NamespaceRecord(name: name, permitted: permitted, strict: strict)
      return true
    }
    if changed { notify() }
  }

  public func delete(name: String) {
    let changed = state.withLock { $0.namespaces.removeValue(forKey: name) != nil }
    if changed { notify() }
  }

  /// Replaces the whole content and marks the cache synced.
  public func replaceAll(_ entries: [(name: String, permitted: String?)]) {
    state.withLock { state in
      var next: [String: NamespaceRecord] = [:]
      for entry in entries {
        if let old = state.namespaces[entry.name], old.permitted == entry.permitted {
          next[entry.name] = old
        } else {
          next[entry.name] = NamespaceRecord(name: entry.name, permitted: entry.permitted, strict: strict)
        }
      }
      state.namespaces = next
      state.synced = true
    }
    notify()
  }

  /// Registers a callback for any change (policy may have changed).
  public func observe(_ observer: @escaping @Sendable () -> Void) {
    observers.withLock { $0.append(observer) }
  }

  private func notify() {
    for observer in observers.withLock({ $0 }) { observer() }
  }
}
