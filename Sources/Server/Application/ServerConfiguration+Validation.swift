public import KiamShared

extension ServerConfiguration {
  /// STS's session limits: at least 15 minutes, at most 12 hours, and 1 hour for a role assumed
  /// with a chained role's credentials (`--assume-role-arn`).
  public static let sessionLimits = (minimum: Duration.seconds(15 * 60), maximum: Duration.seconds(12 * 3600))
  public static let chainedSessionLimit = Duration.seconds(3600)

  /// `--min-credential-lifetime` when not given: 30 minutes, or a third of sessions shorter
  /// than 45 minutes (kiam manifests often pass 15m).
  public static func defaultCredentialFloor(sessionDuration: Duration) -> Duration {
    sessionDuration >= .seconds(45 * 60) ? .seconds(1800) : sessionDuration / 3
  }

  /// Every rule that ties fields together, in one place, checked once (by the CLI, and again by
  /// ``ServerApplication`` for configurations built in code): the configuration the server runs
  /// with, and what to warn about.
  ///
  /// - a role base ARN is given (an ARN prefix ending in `/`) or auto-detected;
  /// - the session length is within STS's limits, and capped at 1 h with `--assume-role-arn`
  ///   (a warning) *before* the refresh and floor rules, which are checked against the sessions
  ///   the server will really get;
  /// - `--session-refresh` is above 0 and below the session; the floor (given, or
  ///   ``defaultCredentialFloor(sessionDuration:)``) plus the refresh margin is below it too.
  ///   Otherwise every request would find its credentials below the floor and queue a refresh.
  /// - Throws: ``KiamError`` naming the flag, as the CLI reports it.
  public func validated() throws(KiamError) -> (configuration: ServerConfiguration, warnings: [String]) {
    var config = self
    var warnings: [String] = []
    if let base = config.roleBaseARN {
      guard base.hasPrefix("arn:"), base.hasSuffix("/") else {
        throw KiamError.flag(
          "role-base-arn",
          "\(JSON.quote(base)) must be an ARN prefix ending in '/', e.g. arn:aws:iam::123456789012:role/")
      }
    } else if !config.roleBaseARNAutodetect {
      throw KiamError.flag(
        "role-base-arn",
        "role-base-arn not specified and not auto-detected. please specify or use --role-base-arn-autodetect")
    }
    let requested = GoDuration.format(config.sessionDuration)
    guard config.sessionDuration >= Self.sessionLimits.minimum else {
      throw KiamError.flag("session-duration", "session-duration should be at least 15 minutes, got \(requested)")
    }
    guard config.sessionDuration <= Self.sessionLimits.maximum else {
      throw KiamError.flag("session-duration", "STS allows at most 12h, got \(requested)")
    }
    let chained = config.assumeRoleARN != nil
    if chained, config.sessionDuration > Self.chainedSessionLimit {
      warnings.append(
        "--session-duration capped at 1h: STS limits sessions of roles assumed with a chained role (--assume-role-arn), requested \(requested)"
      )
      config.sessionDuration = Self.chainedSessionLimit
    }
    let sessionText = GoDuration.format(config.sessionDuration) + (chained ? " with --assume-role-arn" : "")
    guard config.sessionRefresh > .zero, config.sessionRefresh < config.sessionDuration else {
      throw KiamError.flag(
        "session-refresh",
        "must be above 0 and below --session-duration (\(sessionText)), got \(GoDuration.format(config.sessionRefresh))"
      )
    }
    let floor = config.minCredentialLifetime ?? Self.defaultCredentialFloor(sessionDuration: config.sessionDuration)
    guard floor >= .zero, floor + config.sessionRefresh < config.sessionDuration else {
      throw KiamError.flag(
        "min-credential-lifetime",
        "plus --session-refresh (\(GoDuration.format(config.sessionRefresh))) must be below --session-duration (\(sessionText)), got \(GoDuration.format(floor))"
      )
    }
    config.minCredentialLifetime = floor
    return (config, warnings)
  }

  /// The floor the server keeps: `--min-credential-lifetime`, or its default for the session.
  public var credentialFloor: Duration {
    minCredentialLifetime ?? Self.defaultCredentialFloor(sessionDuration: sessionDuration)
  }
}
