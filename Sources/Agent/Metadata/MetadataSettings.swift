import KiamShared

/// How the metadata API behaves (from the agent's flags).
struct MetadataSettings: Sendable {
  var allowIPQuery: Bool
  var allowRoutes: GoRegexp
  var requireIMDSv2: Bool
  /// The whole answer to a pod must come within this (an SDK gives up at 1 s).
  var requestBudget: Duration = .milliseconds(900)
  /// What credentials' expiry and tokens' lifetimes are compared with.
  var clock: WallClock = .system
}
