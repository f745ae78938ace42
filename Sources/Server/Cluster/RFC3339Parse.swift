import KiamShared

/// Kubernetes timestamps (`2024-01-02T03:04:05Z`) to Unix seconds.
enum RFC3339Parse {
  static func seconds(_ text: String) -> Int64? { RFC3339.parse(text) }
}
