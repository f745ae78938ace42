public import KiamShared

/// Everything `kiam server` needs, filled from its flags by the CLI layer.
///
/// Defaults are Go kiam v4's, except where this implementation deliberately differs (documented
/// on the property): `sessionDuration` is 60m instead of 15m.
public struct ServerConfiguration: Sendable {
  // MARK: Telemetry
  /// `--prometheus-listen-addr`; nil disables the metrics endpoint.
  public var prometheusListenAddress: HostPort?

  // MARK: TLS and gRPC
  /// `--cert`, `--key`, `--ca`.
  public var tls: TLSFiles
  /// `--bind` (default `localhost:9610`).
  public var bind: HostPort
  /// gRPC keepalive and connection-age flags.
  public var grpc: GRPCConnectionSettings

  // MARK: Kubernetes
  /// `--kubeconfig`; nil means in-cluster configuration.
  public var kubeconfig: String?
  /// `--pod-manifests DIR`: read pods and namespaces from YAML files instead of the API.
  public var podManifests: String?
  /// `--sync` (default 1m): accepted for compatibility. kiam's informer resync only replayed its
  /// own cache; here the watch resumes from its resourceVersion and relists on 410 Gone.
  public var sync: Duration
  /// `--pod-wait-timeout` (default 800ms): how long a request for an unknown IP waits for the watch.
  public var podWaitTimeout: Duration
  /// `--require-node-identity`: agents only get roles of pods on their own node.
  public var requireNodeIdentity: Bool

  // MARK: Roles and policy
  /// `--role-base-arn`: prefix for role names that are not ARNs.
  public var roleBaseARN: String?
  /// `--role-base-arn-autodetect`: derive the prefix from the instance profile.
  public var roleBaseARNAutodetect: Bool
  /// `--disable-strict-namespace-regexp`: match `iam.amazonaws.com/permitted` unanchored.
  public var disableStrictNamespaceRegexp: Bool
  /// `--permitted-regexp-mode=v3`: match `iam.amazonaws.com/permitted` as kiam v3 did.
  public var permittedRegexpV3: Bool

  /// How `iam.amazonaws.com/permitted` is matched, from the two flags above.
  public var permittedMatching: PermittedMatching {
    permittedRegexpV3 ? .anywhereInAnnotation : disableStrictNamespaceRegexp ? .anywhereInARN : .wholeARN
  }

  // MARK: STS
  /// `--session` (default `kiam`): session name suffix when a pod sets none.
  public var session: String
  /// `--session-duration` (default 60m; Go kiam 15m): STS `DurationSeconds`.
  public var sessionDuration: Duration
  /// `--session-refresh` (default 5m): refresh credentials at least this long before expiry.
  public var sessionRefresh: Duration
  /// `--min-credential-lifetime` (nil: 30m, or a third of `--session-duration` below 45m, set
  /// by ``validated()``): credentials are refreshed early enough that served ones keep at least
  /// this much validity. Read it as ``credentialFloor``.
  public var minCredentialLifetime: Duration?
  /// `--assume-role-arn`: role the server assumes first and uses for every pod role.
  public var assumeRoleARN: String?
  /// `--region`: regional STS endpoint; nil means the global endpoint.
  public var region: String?
  /// `--sts-endpoint`: explicit STS URL (VPC endpoints, tests).
  public var stsEndpoint: String?
  /// `--fetchers` (default 8): maximum concurrent STS calls.
  public var fetchers: Int
  /// `--prefetch-buffer-size` (default 1000): accepted for compatibility; prefetch is not lossy here.
  public var prefetchBufferSize: Int
  /// `--sts-rate-limit` (default 100/s) and `--sts-burst` (default 1000): token bucket for STS
  /// calls. The burst lets a new server prefetch 1,000 identities at once; the sustained rate is
  /// far above what refreshes need (1,000 identities ≈ 0.7 calls/s).
  public var stsRateLimit: Double
  public var stsBurst: Int

  // MARK: Environment
  /// The process environment (in-cluster Kubernetes settings, AWS credential variables).
  public var environment: [String: String]

  public init(
    prometheusListenAddress: HostPort? = nil,
    tls: TLSFiles,
    bind: HostPort = HostPort(host: "localhost", port: 9610),
    grpc: GRPCConnectionSettings = .defaults,
    kubeconfig: String? = nil,
    podManifests: String? = nil,
    sync: Duration = .seconds(60),
    podWaitTimeout: Duration = .milliseconds(800),
    requireNodeIdentity: Bool = false,
    roleBaseARN: String? = nil,
    roleBaseARNAutodetect: Bool = false,
    disableStrictNamespaceRegexp: Bool = false,
    permittedRegexpV3: Bool = false,
    session: String = "kiam",
    sessionDuration: Duration = .seconds(60 * 60),
    sessionRefresh: Duration = .seconds(5 * 60),
    minCredentialLifetime: Duration? = nil,
    assumeRoleARN: String? = nil,
    region: String? = nil,
    stsEndpoint: String? = nil,
    fetchers: Int = 8,
    prefetchBufferSize: Int = 1000,
    stsRateLimit: Double = 100,
    stsBurst: Int = 1000,
    environment: [String: String] = [:]
  ) {
    self.prometheusListenAddress = prometheusListenAddress
    self.tls = tls
    self.bind = bind
    self.grpc = grpc
    self.kubeconfig = kubeconfig
    self.podManifests = podManifests
    self.sync = sync
    self.podWaitTimeout = podWaitTimeout
    self.requireNodeIdentity = requireNodeIdentity
    self.roleBaseARN = roleBaseARN
    self.roleBaseARNAutodetect = roleBaseARNAutodetect
    self.disableStrictNamespaceRegexp = disableStrictNamespaceRegexp
    self.permittedRegexpV3 = permittedRegexpV3
    self.session = session
    self.sessionDuration = sessionDuration
    self.sessionRefresh = sessionRefresh
    self.minCredentialLifetime = minCredentialLifetime
    self.assumeRoleARN = assumeRoleARN
    self.region = region
    self.stsEndpoint = stsEndpoint
    self.fetchers = fetchers
    self.prefetchBufferSize = prefetchBufferSize
    self.stsRateLimit = stsRateLimit
    self.stsBurst = stsBurst
    self.environment = environment
  }
}
