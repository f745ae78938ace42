public import ServiceLifecycle

/// Re-reads the TLS files of a ``TLSMaterialStore`` periodically, so certificates rotated in a
/// Kubernetes Secret volume (an atomic `..data` symlink swap) are used for new connections.
public struct TLSReloadService: Service {
  private let store: TLSMaterialStore
  private let interval: Duration

  /// - Parameters:
  ///   - store: The store to refresh.
  ///   - interval: How often to check the files (reading three small files is cheap).
  public init(store: TLSMaterialStore, interval: Duration = .seconds(2)) {
    self.store = store
    self.interval = interval
  }

  public func run() async throws {
    try? await cancelWhenGracefulShutdown {
      while true {
        try await Task.sleep(for: interval)
        await store.reload()
      }
    }
  }
}
