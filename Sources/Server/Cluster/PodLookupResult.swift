/// The answer to "which pod has this IP?".
public enum PodLookupResult: Sendable, Equatable {
  /// Exactly one pod may act for the IP.
  case found(PodRecord)
  /// No live pod holds the IP (or only a terminating one, whose IP may already be reused).
  case notFound
  /// More than one live, non-terminating pod claims the IP.
  case multiple([PodRecord])
  /// Only host-network pods claim the IP: they share the node's address, so the caller cannot be
  /// told apart from other host processes.
  case hostNetwork(PodRecord)
  /// The caches have not synced yet.
  case notReady

  /// Final answers; the others may change when the watch delivers more events.
  var isDefinitive: Bool {
    switch self {
    case .found, .hostNetwork, .notReady: true
    case .notFound, .multiple: false
    }
  }
}
