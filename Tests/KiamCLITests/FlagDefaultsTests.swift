import KiamAgent
import KiamServer
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import kiam

/// Every flag's default (kiam v4's, or the documented deliberate difference) and every flag's
/// parsing in both `--flag=value` and `--flag value` forms.
@Suite struct FlagDefaultsTests {
  static let tls = ["/t/c.pem", "/t/k.pem", "/t/ca.pem"]
  static let tlsArgs = ["--cert=/t/c.pem", "--key=/t/k.pem", "--ca=/t/ca.pem"]

  func withRoot<T>(_ body: (ResolveContext) throws -> T) throws -> T {
    let root = try fileRoot(with: Self.tls + ["/t/kubeconfig", "/t/token"])
    defer { root.remove() }
    try root.write("t/manifests/.keep", "")
    return try body(ResolveContext(environment: ["HOST_IP": "10.9.8.7"], fileRoot: root.path))
  }

  @Test func serverDefaults() throws {
    let (c, warnings) = try withRoot {
      try parseServer(["server"] + Self.tlsArgs + ["--role-base-arn=arn:aws:iam::123456789012:role/"], context: $0)
    }
    #expect(warnings.isEmpty)
    #expect(c.prometheusListenAddress == nil)
    #expect(c.bind == HostPort(host: "localhost", port: 9610))
    #expect(c.fetchers == 8)
    #expect(c.prefetchBufferSize == 1000)
    #expect(c.kubeconfig == nil)
    #expect(c.podManifests == nil)
    #expect(c.sync == .seconds(60))
    #expect(c.podWaitTimeout == .milliseconds(800))
    #expect(c.requireNodeIdentity == false)
    #expect(c.roleBaseARN == "arn:aws:iam::123456789012:role/")
    #expect(c.roleBaseARNAutodetect == false)
    #expect(c.disableStrictNamespaceRegexp == false)
    #expect(c.permittedMatching == .wholeARN)
    #expect(c.session == "kiam")
    #expect(c.sessionDuration == .seconds(3600))  // kiam: 15m, see ServerConfiguration
    #expect(c.sessionRefresh == .seconds(300))
    #expect(c.minCredentialLifetime == .seconds(1800))
    #expect(c.assumeRoleARN == nil)
    #expect(c.region == nil)
    #expect(c.stsEndpoint == nil)
    #expect(c.stsRateLimit == 100)
    #expect(c.stsBurst == 1000)
    #expect(
      c.grpc
        == GRPCConnectionSettings(
          keepaliveTime: .seconds(10), keepaliveTimeout: .seconds(2), permitWithoutStream: false,
          maxConnectionIdle: .seconds(900), maxConnectionAge: .seconds(900), maxConnectionAgeGrace: .seconds(900)))
  }

  @Test func minimumLifetimeFollowsShortSessions() throws {
    let base = ["server"] + Self.tlsArgs + ["--role-base-arn-autodetect"]
    // kiam manifests often pass 15m sessions: still valid, with a floor of a third.
    let (short, _) = try withRoot { try parseServer(base + ["--session-duration=15m"], context: $0) }
    #expect(short.minCredentialLifetime == .seconds(300))
    #expect(throws: KiamError.self) {
      try withRoot { try parseServer(base + ["--session-duration=30m", "--min-credential-lifetime=26m"], context: $0) }
    }
  }

  /// STS caps sessions of a role assumed through a chained role (`--assume-role-arn`) at 1 h.
  /// The CLI applies the cap (with a warning) so the floor and refresh rules are checked against
  /// the sessions the server will really get: a 1 h floor on 1 h sessions would queue a refresh
  /// on nearly every request.
  @Test func roleChainingCapsTheSessionBeforeTheFloorIsChecked() throws {
    let base = ["server"] + Self.tlsArgs + ["--role-base-arn-autodetect", "--assume-role-arn=arn:aws:iam::1:role/kiam"]
    let (capped, warnings) = try withRoot { try parseServer(base + ["--session-duration=2h"], context: $0) }
    #expect(capped.sessionDuration == .seconds(3600))
    #expect(capped.minCredentialLifetime == .seconds(1800))
    #expect(warnings.contains { $0.contains("--session-duration capped at 1h") }, "\(warnings)")
    let error = #expect(throws: KiamError.self) {
      try withRoot { try parseServer(base + ["--session-duration=2h", "--min-credential-lifetime=1h"], context: $0) }
    }
    #expect(error?.message.contains("--min-credential-lifetime") == true, "\(String(describing: error))")
    #expect(error?.message.contains("1h0m0s with --assume-role-arn") == true, "\(String(describing: error))")
    // Without a chained role, 2 h sessions keep a 1 h floor.
    let plain =
      ["server"] + Self.tlsArgs + [
        "--role-base-arn-autodetect", "--session-duration=2h", "--min-credential-lifetime=1h",
      ]
    #expect(try withRoot { try parseServer(plain, context: $0) }.0.sessionDuration == .seconds(7200))
  }

  @Test func agentDefaults() throws {
    let (c, warnings) = try withRoot { try parseAgent(["agent"] + Self.tlsArgs, context: $0) }
    #expect(warnings.isEmpty)
    #expect(c.host == "10.9.8.7")  // from HOST_IP
    #expect(c.port == 3100)
    #expect(c.allowIPQuery == false)
    #expect(c.allowRouteRegexp == "^$")
    #expect(c.iptables == false)
    #expect(c.iptablesRemove == true)
    #expect(c.iptablesBackend == .auto)
    #expect(c.hostInterface == "docker0")
    #expect(c.serverAddress == HostPort(host: "localhost", port: 9610))
    #expect(c.grpc.keepaliveTime == .seconds(10))
    #expect(c.grpc.keepaliveTimeout == .seconds(2))
    #expect(c.grpc.permitWithoutStream == false)
    #expect(c.prometheusListenAddress == nil)
    #expect(c.requireIMDSv2 == false)
    #expect(c.metadataEndpoint == "http://169.254.169.254")
    #expect(c.nodeIdentityTokenFile == nil)
    #expect(c.maxConnectionsPerSource == 64)
    #expect(c.newConnectionsPerSecondPerSource == 500)
  }

  @Test func healthDefaults() throws {
    let (c, _) = try withRoot { try parseHealth(["health"] + Self.tlsArgs, context: $0) }
    #expect(c.serverAddress == HostPort(host: "localhost", port: 9610))
    #expect(c.connectTimeout == .seconds(1))
    #expect(c.timeout == .seconds(1))
  }

  @Test func logDefaults() throws {
    guard let box = try parse(["health"] + Self.tlsArgs) as? HealthBox else {
      Issue.record("health")
      return
    }
    #expect(box.command.log.jsonLog == false)
    #expect(try box.command.log.logLevel() == .info)
    for (text, level) in [("debug", Logger.Level.debug), ("info", .info), ("warn", .warning), ("error", .error)] {
      guard let b = try parse(["health", "--level", text] + Self.tlsArgs) as? HealthBox else { continue }
      #expect(try b.command.log.logLevel() == level)
    }
  }

  /// (flag, value, check) for every server flag taking a value.
  static let serverValueFlags: [(String, String, @Sendable (ServerConfiguration) -> Bool)] = [
    ("bind", "0.0.0.0:443", { $0.bind == HostPort(host: "0.0.0.0", port: 443) }),
    ("fetchers", "3", { $0.fetchers == 3 }),
    ("prefetch-buffer-size", "50", { $0.prefetchBufferSize == 50 }),
    ("kubeconfig", "/t/kubeconfig", { $0.kubeconfig == "/t/kubeconfig" }),
    ("pod-manifests", "/t/manifests", { $0.podManifests == "/t/manifests" }),
    ("sync", "30s", { $0.sync == .seconds(30) }),
    ("pod-wait-timeout", "500ms", { $0.podWaitTimeout == .milliseconds(500) }),
    ("role-base-arn", "arn:aws:iam::111111111111:role/", { $0.roleBaseARN == "arn:aws:iam::111111111111:role/" }),
    ("session", "app", { $0.session == "app" }),
    ("session-duration", "2h", { $0.sessionDuration == .seconds(7200) }),
    ("session-refresh", "10m", { $0.sessionRefresh == .seconds(600) }),
    ("min-credential-lifetime", "20m", { $0.minCredentialLifetime == .seconds(1200) }),
    ("assume-role-arn", "arn:aws:iam::1:role/kiam", { $0.assumeRoleARN == "arn:aws:iam::1:role/kiam" }),
    ("region", "eu-west-1", { $0.region == "eu-west-1" }),
    ("sts-endpoint", "http://127.0.0.1:5000", { $0.stsEndpoint == "http://127.0.0.1:5000" }),
    ("sts-rate-limit", "2.5", { $0.stsRateLimit == 2.5 }),
    ("sts-burst", "7", { $0.stsBurst == 7 }),
    ("permitted-regexp-mode", "v3", { $0.permittedMatching == .anywhereInAnnotation }),
    (
      "prometheus-listen-addr", "127.0.0.1:9999",
      { $0.prometheusListenAddress == HostPort(host: "127.0.0.1", port: 9999) }
    ),
    ("grpc-keepalive-time-duration", "20s", { $0.grpc.keepaliveTime == .seconds(20) }),
    ("grpc-keepalive-timeout-duration", "3s", { $0.grpc.keepaliveTimeout == .seconds(3) }),
    ("grpc-max-connection-idle-duration", "1m", { $0.grpc.maxConnectionIdle == .seconds(60) }),
    ("grpc-max-connection-age-duration", "2m", { $0.grpc.maxConnectionAge == .seconds(120) }),
    ("grpc-max-connection-age-grace-duration", "3m", { $0.grpc.maxConnectionAgeGrace == .seconds(180) }),
    ("grpc-keepalive-time-ms", "21s", { $0.grpc.keepaliveTime == .seconds(21) }),
    ("grpc-keepalive-timeout-ms", "4s", { $0.grpc.keepaliveTimeout == .seconds(4) }),
    ("prometheus-sync-interval", "5s", { _ in true }),
    ("pprof-listen-addr", "127.0.0.1:6060", { _ in true }),
  ]

  @Test func everyServerValueFlagInBothForms() throws {
    let base = ["server"] + Self.tlsArgs + ["--role-base-arn-autodetect"]
    for (flag, value, check) in Self.serverValueFlags {
      let equals = try withRoot { try parseServer(base + ["--\(flag)=\(value)"], context: $0).0 }
      let spaced = try withRoot { try parseServer(base + ["--\(flag)", value], context: $0).0 }
      #expect(check(equals), "--\(flag)=\(value)")
      #expect(check(spaced), "--\(flag) \(value)")
    }
  }

  @Test func everyServerBooleanAndItsNegation() throws {
    let base = ["server"] + Self.tlsArgs + ["--role-base-arn=arn:aws:iam::1:role/"]
    let flags: [(String, @Sendable (ServerConfiguration) -> Bool)] = [
      ("require-node-identity", { $0.requireNodeIdentity }),
      ("role-base-arn-autodetect", { $0.roleBaseARNAutodetect }),
      ("disable-strict-namespace-regexp", { $0.disableStrictNamespaceRegexp }),
    ]
    for (flag, value) in flags {
      #expect(try withRoot { value(try parseServer(base + ["--\(flag)"], context: $0).0) } == true, "--\(flag)")
      #expect(try withRoot { value(try parseServer(base + ["--\(flag)", "--no-\(flag)"], context: $0).0) } == false)
      #expect(try withRoot { value(try parseServer(base + ["--no-\(flag)"], context: $0).0) } == false)
    }
    // --json-log / --no-json-log on every command.
    let box = try #require(try parse(base + ["--json-log", "--no-json-log"]) as? ServerBox)
    #expect(box.command.log.jsonLog == false)
  }

  static let agentValueFlags: [(String, String, @Sendable (AgentConfiguration) -> Bool)] = [
    ("port", "8181", { $0.port == 8181 }),
    ("allow-route-regexp", "^/latest/meta-data/placement/", { $0.allowRouteRegexp == "^/latest/meta-data/placement/" }),
    (
      "whitelist-route-regexp", "^/latest/meta-data/instance-id$",
      { $0.allowRouteRegexp == "^/latest/meta-data/instance-id$" }
    ),
    ("host", "192.168.1.2", { $0.host == "192.168.1.2" }),
    ("host-interface", "!eth0", { $0.hostInterface == "!eth0" }),
    ("server-address", "kiam-server:443", { $0.serverAddress == HostPort(host: "kiam-server", port: 443) }),
    ("gateway-timeout-creation", "2s", { _ in true }),
    ("grpc-keepalive-time-duration", "30s", { $0.grpc.keepaliveTime == .seconds(30) }),
    ("grpc-keepalive-timeout-duration", "5s", { $0.grpc.keepaliveTimeout == .seconds(5) }),
    ("grpc-keepalive-time-ms", "31s", { $0.grpc.keepaliveTime == .seconds(31) }),
    ("grpc-keepalive-timeout-ms", "6s", { $0.grpc.keepaliveTimeout == .seconds(6) }),
    ("server-address-refresh", "2s", { _ in true }),
    ("prometheus-listen-addr", ":9620", { $0.prometheusListenAddress == HostPort(host: "", port: 9620) }),
    ("prometheus-sync-interval", "5s", { _ in true }),
    ("pprof-listen-addr", "localhost:6060", { _ in true }),
    ("metadata-endpoint", "http://127.0.0.1:1234", { $0.metadataEndpoint == "http://127.0.0.1:1234" }),
    ("node-identity-token-file", "/t/token", { $0.nodeIdentityTokenFile == "/t/token" }),
    ("iptables-backend", "legacy", { $0.iptablesBackend == .forced(.legacy) }),
    ("max-connections-per-ip", "16", { $0.maxConnectionsPerSource == 16 }),
    ("max-new-connections-per-ip", "50", { $0.newConnectionsPerSecondPerSource == 50 }),
  ]

  @Test func everyAgentValueFlagInBothForms() throws {
    let base = ["agent"] + Self.tlsArgs
    for (flag, value, check) in Self.agentValueFlags {
      let equals = try withRoot { try parseAgent(base + ["--\(flag)=\(value)"], context: $0).0 }
      let spaced = try withRoot { try parseAgent(base + ["--\(flag)", value], context: $0).0 }
      #expect(check(equals), "--\(flag)=\(value)")
      #expect(check(spaced), "--\(flag) \(value)")
    }
  }

  @Test func everyAgentBooleanAndItsNegation() throws {
    let base = ["agent"] + Self.tlsArgs
    let flags: [(String, Bool, @Sendable (AgentConfiguration) -> Bool)] = [
      ("allow-ip-query", false, { $0.allowIPQuery }),
      ("iptables", false, { $0.iptables }),
      ("iptables-remove", true, { $0.iptablesRemove }),
      ("require-imdsv2", false, { $0.requireIMDSv2 }),
      ("grpc-keepalive-permit-without-stream", false, { $0.grpc.permitWithoutStream }),
    ]
    for (flag, defaultValue, value) in flags {
      #expect(try withRoot { value(try parseAgent(base, context: $0).0) } == defaultValue, "default of --\(flag)")
      #expect(try withRoot { value(try parseAgent(base + ["--\(flag)"], context: $0).0) } == true, "--\(flag)")
      #expect(try withRoot { value(try parseAgent(base + ["--no-\(flag)"], context: $0).0) } == false, "--no-\(flag)")
    }
  }

  @Test func hostFlagWinsOverHostIPAndHostIPAlone() throws {
    let base = ["agent"] + Self.tlsArgs
    #expect(try withRoot { try parseAgent(base + ["--host=1.2.3.4"], context: $0).0.host } == "1.2.3.4")
    #expect(try withRoot { try parseAgent(base, context: $0).0.host } == "10.9.8.7")
  }

  /// `status.podIPs` of the host-network agent on a dual-stack node: one address of each family, canonical, the first being
  /// what tokens are bound to; one IPv6 address alone for an IPv6 node.
  @Test(arguments: [
    ("10.0.0.1,fd00::1", ["10.0.0.1", "fd00::1"]), ("fd00:0:0::1, 10.0.0.1", ["fd00::1", "10.0.0.1"]),
    ("FD00::A", ["fd00::a"]), ("10.0.0.1", ["10.0.0.1"]),
  ])
  func hostTakesOneAddressPerFamily(_ value: String, _ expected: [String]) throws {
    let config = try withRoot { try parseAgent(["agent"] + Self.tlsArgs + ["--host=\(value)"], context: $0).0 }
    #expect(config.hosts == expected)
    #expect(config.host == expected[0])
  }

  @Test func deprecatedAliasesWarn() throws {
    let agentArgs =
      ["agent"] + Self.tlsArgs + [
        "--whitelist-route-regexp=^/x$", "--grpc-keepalive-time-ms=10s", "--grpc-keepalive-timeout-ms=2s",
        "--server-address-refresh=2s", "--prometheus-sync-interval=5s",
      ]
    let (agent, warnings) = try withRoot { try parseAgent(agentArgs, context: $0) }
    #expect(agent.allowRouteRegexp == "^/x$")
    for name in [
      "--whitelist-route-regexp", "--grpc-keepalive-time-ms", "--grpc-keepalive-timeout-ms",
      "--server-address-refresh", "--prometheus-sync-interval",
    ] {
      #expect(warnings.contains { $0.contains(name) && $0.contains("deprecated") }, "\(name)")
    }
  }

  @Test func emptyAllowRouteRegexpMeansDenyAll() throws {
    let (agent, _) = try withRoot { try parseAgent(["agent"] + Self.tlsArgs + ["--allow-route-regexp="], context: $0) }
    #expect(agent.allowRouteRegexp == "^$")
  }
}
