import KiamShared
import Synchronization

/// How a namespace's `iam.amazonaws.com/permitted` expression is matched.
public enum PermittedMatching: Sendable, Equatable {
  /// kiam v4, the default: the whole resolved role ARN must match.
  case wholeARN
  /// kiam v4 with `--disable-strict-namespace-regexp`: a match anywhere in the resolved ARN.
  case anywhereInARN
  /// kiam v3 (`--permitted-regexp-mode=v3`): a match anywhere in the role as the pod's
  /// annotation writes it (a short name stays a short name, nothing is resolved).
  case anywhereInAnnotation

  /// What the expression is matched against.
  func subject(role: ResolvedRole, annotation: String) -> String {
    self == .anywhereInAnnotation ? annotation : role.arn
  }

  /// Whether `expression` allows `subject` in this mode.
  func allows(_ expression: GoRegexp, _ subject: String) -> Bool {
    self == .wholeARN ? expression.matchesWhole(subject) : expression.matches(subject)
  }
}

/// What the server keeps of a namespace: its `iam.amazonaws.com/permitted` expression, compiled
/// once for the server's matching mode.
public struct NamespaceRecord: Sendable {
  public let name: String
  /// The raw annotation, nil when absent.
  public let permitted: String?
  /// How ``compiled`` is matched.
  public let matching: PermittedMatching
  /// The compiled expression, or why it does not compile.
  public let compiled: Result<GoRegexp, KiamError>?

  public init(name: String, permitted: String?, matching: PermittedMatching) {
    self.name = name
    self.permitted = permitted
    self.matching = matching
    if let permitted, !permitted.isEmpty {
      // The expression is parsed on its own; strict matching anchors the parsed expression
      // (``GoRegexp/matchesWhole(_:)``), never its text: wrapped as text, `…:role/a)|(.*`
      // compiled to `^(?:…:role/a)|(.*)$` and allowed every role.
      compiled = Result { try GoRegexp(permitted) }
        .mapError { $0 as? KiamError ?? KiamError(code: .invalidInput, message: "\($0)") }
    } else {
      compiled = nil
    }
  }

  /// kiam v4's two modes: `strict` (the default) or `--disable-strict-namespace-regexp`.
  public init(name: String, permitted: String?, strict: Bool) {
    self.init(name: name, permitted: permitted, matching: strict ? .wholeARN : .anywhereInARN)
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
  /// How `permitted` is matched.
  public let matching: PermittedMatching

  public init(matching: PermittedMatching) {
    self.matching = matching
  }

  /// kiam v4's two modes (see ``NamespaceRecord/init(name:permitted:strict:)``).
  public convenience init(strict: Bool) {
    self.init(matching: strict ? .wholeARN : .anywhereInARN)
  }

  public var isSynced: Bool { state.withLock { $0.synced } }
  public var count: Int { state.withLock { $0.namespaces.count } }

  public func namespace(_ name: String) -> NamespaceRecord? { state.withLock { $0.namespaces[name] } }

  /// Inserts or replaces a namespace from its name and annotation.
  public func upsert(name: String, permitted: String?) {
    let changed: Bool = state.withLock { state in
      if let old = state.namespaces[name], old.permitted == permitted { return false }
      state.namespaces[name] = NamespaceRecord(name: name, permitted: permitted, matching: matching)
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
          next[entry.name] = NamespaceRecord(name: entry.name, permitted: entry.permitted, matching: matching)
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
