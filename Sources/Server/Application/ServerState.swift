import Synchronization

/// The shared, read-mostly state the gRPC service answers from.
public final class ServerState: Sendable {
  public let pods: PodCache
  public let namespaces: NamespaceCache
  private let resolverState = Mutex<RoleARNResolver?>(nil)

  public init(pods: PodCache, namespaces: NamespaceCache) {
    self.pods = pods
    self.namespaces = namespaces
  }

  /// The role resolver, once the base ARN is known (immediately, or after autodetection).
  public var resolver: RoleARNResolver? { resolverState.withLock { $0 } }

  public func setResolver(_ resolver: RoleARNResolver) {
    resolverState.withLock { $0 = resolver }
  }

  /// Why the server cannot answer pod RPCs yet, or nil when it can.
  public var notReadyReason: String? {
    var missing: [String] = []
    if !pods.isSynced { missing.append("pod cache not synced") }
    if !namespaces.isSynced { missing.append("namespace cache not synced") }
    if resolver == nil { missing.append("role base ARN not detected yet") }
    return missing.isEmpty ? nil : missing.joined(separator: ", ")
  }
}
