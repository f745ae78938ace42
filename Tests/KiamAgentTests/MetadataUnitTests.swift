import Foundation
import Synchronization
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Testing

@testable import KiamAgent

@Suite struct MetadataRouteTests {
  @Test(arguments: [
    ("/ping", MetadataRoute.ping),
    ("/health", .health),
    ("/health?deep=1", .health),
    ("/latest/api/token", .token),
    ("/latest/meta-data/iam/security-credentials/", .roleList(extended: false)),
    ("/2016-09-02/meta-data/iam/security-credentials/", .roleList(extended: false)),
    ("/latest/meta-data/iam/security-credentials-extended/", .roleList(extended: true)),
    ("/latest/meta-data/iam/security-credentials", .redirect("/latest/meta-data/iam/security-credentials/")),
    ("/latest/meta-data/iam/security-credentials?x=1", .redirect("/latest/meta-data/iam/security-credentials/?x=1")),
    ("/latest/meta-data/iam/security-credentials-extended", .redirect("/latest/meta-data/iam/security-credentials-extended/")),
    ("/latest/meta-data/iam/security-credentials/app", .credentials(role: "app", extended: false)),
    ("/latest/meta-data/iam/security-credentials/app/", .credentials(role: "app", extended: false)),
    ("/latest/meta-data/iam/security-credentials/team/app", .credentials(role: "team/app", extended: false)),
    ("/latest/meta-data/iam/security-credentials/arn:aws:iam::1:role/x", .credentials(role: "arn:aws:iam::1:role/x", extended: false)),
    ("/latest/meta-data/iam/security-credentials-extended/app", .credentials(role: "app", extended: true)),
    ("/latest/meta-data/iam/security-credentials//x", .redirect("/latest/meta-data/iam/security-credentials/x")),
    ("/latest/meta-data/./iam/info", .redirect("/latest/meta-data/iam/info")),
    ("/latest/meta-data/placement/../iam/security-credentials/", .redirect("/latest/meta-data/iam/security-credentials/")),
    ("/latest/meta-data/%2e%2e/user-data", .redirect("/latest/user-data")),
    ("/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", .forbiddenCredentials),
    ("/latest/meta-data/placement/availability-zone", .other(path: "/latest/meta-data/placement/availability-zone")),
    ("/latest/user-data", .other(path: "/latest/user-data")),
    ("/", .other(path: "/")),
    ("/latest/meta-data/IAM/security-credentials/", .forbiddenCredentials),
    ("/latest/meta-data/iam/security-credentials%20/x", .forbiddenCredentials),
    ("/latest/Api/Token", .forbiddenCredentials),
    ("/latest/api;x/token", .forbiddenCredentials),
    ("/lat%20est/meta-data/iam/security-credentials", .redirect("/lat%20est/meta-data/iam/security-credentials/")),
    ("/latest/meta-data/placement/a%20b", .other(path: "/latest/meta-data/placement/a b")),
    ("/latest/meta-data/placement/%2e%2e%2f%2e%2e%2fuser-data", .redirect("/latest/user-data")),
  ])
  func parses(_ uri: String, _ route: MetadataRoute) {
    #expect(MetadataRoute.parse(uri: uri) == route)
  }

  /// Targets that do not decode cleanly are refused whole, never decoded with replacements.
  @Test(arguments: [
    "/latest/meta-data/placement/%ff", "/latest/meta-data/placement/%zz", "/latest/meta-data/placement/%f",
    "/latest/meta-data/placement/a%00", "/latest/meta-data/placement/a%7f", "/latest/meta-data/placement/?q=%", "/a\u{7f}",
    "/latest/meta-data/placement/\u{e9}", "/latest/meta-data/iam/security-credentials/%ff",
  ])
  func malformedTargets(_ uri: String) {
    guard case .malformed = MetadataRoute.parse(uri: uri) else {
      Issue.record("\(uri): \(MetadataRoute.parse(uri: uri))")
      return
    }
  }

  @Test func pathEncodingRoundTrips() {
    for path in ["/latest/meta-data/placement/a b", "/x/\u{e9}/%/?#", "/plain-path_1.2~x/+=,;:@!$&'()*"] {
      let encoded = PercentEncoding.encodePath(path)
      #expect(encoded.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
      #expect(PercentEncoding.decodePath(encoded) == path)
    }
    #expect(PercentEncoding.encodePath("/a b/\u{e9}") == "/a%20b/%C3%A9")
  }

  /// The allocation-free path for canonical credentials paths answers exactly like the general
  /// parser, and leaves everything unusual to it.
  @Test func fastPathAgreesWithTheGeneralParser() {
    let base = [
      "/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials-extended/",
      "/latest/meta-data/iam/security-credentials/app-web", "/latest/meta-data/iam/security-credentials/App_1+=,.@-x/",
      "/latest/meta-data/iam/security-credentials-extended/r", "/latest/meta-data/iam/security-credentials/..",
      "/latest/meta-data/iam/security-credentials/.", "/latest/meta-data/iam/security-credentials//",
      "/latest/meta-data/iam/security-credentials/a//", "/latest/meta-data/iam/security-credentials-extende/x",
      "/latest/meta-data/iam/security-credentials-extendedx/", "/latest/meta-data/iam/security-credentials/a%2fb",
      "/latest/meta-data/iam/security-credentials/a?x=1", "/latest/meta-data/iam/security-credentials/a b",
      "/latest/meta-data/iam/security-credentialsx", "/latest/meta-data/iam/security-credentials/.a",
      "/latest/meta-data/iam/security-credentials/a/./",
    ]
    // Every single-byte insertion after the fixed prefix: deterministic, and covers separators,
    // escapes, dots and plain characters at every position.
    let alphabet = Array("a/.-%?x_2".utf8)
    var uris = base
    for uri in base {
      let bytes = Array(uri.utf8)
      for position in 40...bytes.count {
        for byte in alphabet {
          var mutated = bytes
          mutated.insert(byte, at: position)
          uris.append(String(decoding: mutated, as: UTF8.self))
        }
      }
    }
    var fast = 0
    for uri in uris {
      guard let route = MetadataRoute.fastCredentialsRoute(uri) else { continue }
      fast += 1
      #expect(route == MetadataRoute.parseGeneral(uri: uri), "\(uri)")
    }
    #expect(fast > 100)
    #expect(MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/app-web")
      == .credentials(role: "app-web", extended: false))
    #expect(MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/team/app") == nil)
    #expect(MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/..") == nil)
  }

  @Test func sameRole() {
    #expect(PodCredentialCache.sameRole("app", "/app"))
    #expect(PodCredentialCache.sameRole("app/", "app"))
    #expect(!PodCredentialCache.sameRole("app", "other"))
  }
}

@Suite struct IMDSv2TokenTests {
  let tokens = IMDSv2Tokens()

  @Test func validForItsCallerUntilExpiry() {
    let token = tokens.issue(ip: "10.0.0.1", ttl: 60, now: 1000)
    #expect(tokens.check(token, ip: "10.0.0.1", now: 1059) == .valid)
    #expect(tokens.check(token, ip: "10.0.0.1", now: 1060) == .expired)
    #expect(tokens.check(token, ip: "10.0.0.2", now: 1001) == .wrongCaller)
  }

  @Test func forgedOrForeignTokensAreInvalid() {
    let token = tokens.issue(ip: "10.0.0.1", ttl: 60, now: 1000)
    #expect(IMDSv2Tokens().check(token, ip: "10.0.0.1", now: 1001) == .invalid)  // another agent's key
    var tampered = Array(token)
    tampered[8] = tampered[8] == "A" ? "B" : "A"
    #expect(tokens.check(String(tampered), ip: "10.0.0.1", now: 1001) == .invalid)
    #expect(tokens.check("garbage", ip: "10.0.0.1", now: 1001) == .invalid)
    #expect(tokens.check("", ip: "10.0.0.1", now: 1001) == .invalid)
  }

  func reloaded(_ store: TLSMaterialStore) async -> Bool {
    if case .reloaded = await store.reload() { return true }
    return false
  }

  /// Two agent processes on one node (a restart, an upgrade's old and new agent) share the key;
  /// another node does not; after the key file is rotated the previous key is accepted for the
  /// longest token lifetime.
  @Test func theKeyIsTheNodesAndSurvivesARotation() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    let files = TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca)
    let logger = Logger(label: "test")
    let old = try await TLSMaterialStore(files: files, role: .client, metrics: nil, logger: logger)
    let new = try await TLSMaterialStore(files: files, role: .client, metrics: nil, logger: logger)
    let before = IMDSv2Tokens(store: old, host: "10.0.0.5")
    let after = IMDSv2Tokens(store: new, host: "10.0.0.5")
    let token = before.issue(ip: "10.1.0.7", ttl: 21600, now: 1000)
    #expect(after.check(token, ip: "10.1.0.7", now: 1001) == .valid)
    #expect(IMDSv2Tokens(store: new, host: "10.0.0.6").check(token, ip: "10.1.0.7", now: 1001) == .invalid)
    // cert-manager rotates the key.
    _ = try TestTLSFiles.write(try pki.ca.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: pki.ca, name: "agent", in: dir.path)
    try await Task.sleep(for: .milliseconds(50))
    #expect(await reloaded(new))
    let rotated = after.issue(ip: "10.1.0.7", ttl: 60, now: 2000)
    #expect(after.check(rotated, ip: "10.1.0.7", now: 2001) == .valid)
    #expect(after.check(token, ip: "10.1.0.7", now: 2001) == .valid, "a token of the previous key")
    #expect(before.check(rotated, ip: "10.1.0.7", now: 2001) == .invalid, "an agent still on the old key")
    // (The previous key is kept exactly as long as a token under it can live: 6 h after the
    // rotation is noticed, by when every such token has expired.)
    // A second rotation leaves only the newest key and the one before.
    _ = try TestTLSFiles.write(try pki.ca.issue(commonName: "kiam-agent", usages: [.clientAuth]), ca: pki.ca, name: "agent", in: dir.path)
    try await Task.sleep(for: .milliseconds(50))
    #expect(await reloaded(new))
    #expect(after.check(token, ip: "10.1.0.7", now: 3000) == .invalid)
    #expect(after.check(rotated, ip: "10.1.0.7", now: 2001) == .valid)
  }
}

@Suite struct IPTablesRuleTests {
  @Test func rendersKiamsRuleInserted() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181)
    #expect(rule.binary == "iptables")
    #expect(rule.insertArguments == [
      "-w", "5", "-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "-d", "169.254.169.254/32", "--dport", "80", "-i", "cali+",
      "-m", "comment", "--comment", "kiam agent: EC2 metadata to the agent", "-j", "DNAT", "--to-destination", "10.0.0.5:8181",
    ])
    #expect(rule.checkArguments.prefix(6) == ["-w", "5", "-t", "nat", "-C", "PREROUTING"])
    #expect(rule.deleteArguments.prefix(6) == ["-w", "5", "-t", "nat", "-D", "PREROUTING"])
  }

  /// The kernel's share of the per-pod connection limit: new connections to the agent's port
  /// from pod interfaces beyond the rate get a reset, in filter INPUT (after the DNAT).
  @Test func rendersTheConnectionRateRule() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181).connectionRateLimit(perSecond: 500, burst: 1000)
    #expect(rule.insertArguments == [
      "-w", "5", "-t", "filter", "-I", "INPUT", "1", "-p", "tcp", "-d", "10.0.0.5/32", "--dport", "8181", "-i", "cali+",
      "--syn", "-m", "hashlimit", "--hashlimit-above", "500/sec", "--hashlimit-burst", "1000", "--hashlimit-mode", "srcip",
      "--hashlimit-name", IPTablesRule.hashlimitName(perSecond: 500, burst: 1000), "-m", "comment", "--comment", "kiam agent: new connections per pod",
      "-j", "REJECT", "--reject-with", "tcp-reset",
    ])
    #expect(IPTablesRule.hashlimitName(perSecond: 500, burst: 1000).count <= 15)
    #expect(IPTablesRule.hashlimitName(perSecond: 500, burst: 1000) != IPTablesRule.hashlimitName(perSecond: 50, burst: 100))
    #expect(IPTablesRule.hashlimitName(perSecond: 100_000, burst: 200_000).hasPrefix("kiam-"))
    let v6 = IPTablesRule.forHost("fd00::5", interface: "!eth0", port: 3100).connectionRateLimit(perSecond: 1, burst: 2)
    #expect(v6.binary == "ip6tables")
    #expect(v6.specification.prefix(9) == ["-p", "tcp", "-d", "fd00::5/128", "--dport", "3100", "!", "-i", "eth0"])
  }

  /// What an agent with other flags left (`--no-iptables-remove`) is found by its comment and
  /// deleted; our own rule and other programs' rules are kept.
  @Test func staleRulesOfOursAreFoundInTheListing() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181).connectionRateLimit(perSecond: 500, burst: 1000)
    let listing = """
      -P INPUT ACCEPT
      -A INPUT -d 10.0.0.5/32 -i cali+ -p tcp -m tcp --dport 8181 --tcp-flags FIN,SYN,RST,ACK SYN -m hashlimit --hashlimit-above 100/sec --hashlimit-burst 200 --hashlimit-mode srcip --hashlimit-name kiam-agent -m comment --comment "kiam agent: new connections per pod" -j REJECT --reject-with tcp-reset
      -A INPUT -p tcp -m comment --comment "someone else" -j ACCEPT
      """
    let stale = rule.staleDeleteArguments(in: listing)
    #expect(stale.count == 1)
    #expect(stale.first?.prefix(6) == ["-w", "5", "-t", "filter", "-D", "INPUT"])
    #expect(stale.first?.contains("100/sec") == true && stale.first?.contains("kiam agent: new connections per pod") == true)
    let dnat = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181)
    let ours = "-A PREROUTING -d 169.254.169.254/32 -i cali+ -p tcp -m tcp --dport 80 -m comment --comment \"kiam agent: EC2 metadata to the agent\" -j DNAT --to-destination 10.0.0.5:8181"
    // Our current rule as -S prints it (other word order, `-m tcp`) is ours.
    #expect(dnat.staleDeleteArguments(in: ours).isEmpty)
    #expect(rule.staleDeleteArguments(in: listing.replacingOccurrences(of: "100/sec", with: "500/sec").replacingOccurrences(of: "200", with: "1000")).isEmpty)
    #expect(dnat.staleDeleteArguments(in: ours.replacingOccurrences(of: "8181", with: "3100")).count == 1)
    #expect(IPTablesRule.shellWords("-A X --comment \"a b\" -j Y") == ["-A", "X", "--comment", "a b", "-j", "Y"])
  }

  @Test func invertedInterface() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "!eth0", port: 3100)
    #expect(rule.specification.contains("!"))
    let index = rule.specification.firstIndex(of: "!")!
    #expect(Array(rule.specification[index...(index + 2)]) == ["!", "-i", "eth0"])
  }

  @Test func ipv6UsesIp6tablesAndTheIPv6MetadataAddress() {
    let rule = IPTablesRule.forHost("fd00::5", interface: "eth0", port: 3100)
    #expect(rule.binary == "ip6tables")
    #expect(rule.specification.contains("fd00:ec2::254/128"))
    #expect(rule.specification.last == "[fd00::5]:3100")
  }
}

@Suite struct CredentialsDocumentTests {
  @Test func documentShape() throws {
    let credentials = Kiam_Credentials.with {
      $0.code = "Success"
      $0.type = "AWS-HMAC"
      $0.accessKeyID = "ASIA123"
      $0.secretAccessKey = "sec\"ret"
      $0.token = "tok"
      $0.expiration = "2026-11-23T06:00:00Z"
      $0.lastUpdated = "2026-11-23T05:00:00Z"
    }
    let cached = CachedCredentials(credentials, roleARN: "arn:aws:iam::123456789012:role/app", now: 1_795_410_000)
    let text = String(buffer: cached.document)
    #expect(text.hasSuffix("}\n"))
    #expect(text.hasPrefix("{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-23T05:00:00Z\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\""))
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String]
    #expect(object?["SecretAccessKey"] == "sec\"ret")
    #expect(object?["Expiration"] == "2026-11-23T06:00:00Z")
    #expect(object?["AccountId"] == nil)
    let extended = try JSONSerialization.jsonObject(with: Data(String(buffer: cached.extendedDocument).utf8)) as? [String: String]
    #expect(extended?["AccountId"] == "123456789012")
    #expect(cached.expiration == 1_795_413_600)
  }
}

@Suite struct PodIdentityCacheTests {
  func table(_ dir: TemporaryDirectory, mac: String, device: String) throws -> NeighborTable {
    let path = try dir.write(
      "arp",
      """
      IP address       HW type     Flags       HW address            Mask     Device
      10.0.0.9         0x1         0x2         aa:bb:cc:00:00:01     *        veth1
      10.0.0.7         0x1         0x2         \(mac)     *        \(device)
      10.0.0.8         0x1         0x0         00:00:00:00:00:00     *        veth2
      """)
    return NeighborTable(path: path)
  }

  @Test func neighborTableParsing() throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let neighbors = try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7")
    #expect(neighbors.link(for: "10.0.0.7") == "de:ad:be:ef:00:07@veth7")
    #expect(neighbors.link(for: "10.0.0.8") == nil)
    #expect(neighbors.link(for: "10.0.0.1") == nil)
    #expect(neighbors.link(for: "fd00::1") == nil)
  }

  @Test func identityIsTrustedWhileTheLinkIsUnchangedAndNotAfterReuse() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let cache = PodCredentialCache(source: NoServer(), neighbors: try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7"), identityMaxAge: .milliseconds(100))
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old"))
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "old-role")
    try await Task.sleep(for: .milliseconds(200))
    // Same MAC and interface: still the same pod.
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "old-role")
    // The IP now belongs to a new pod (new veth, new MAC): not trusted any more.
    _ = try table(dir, mac: "de:ad:be:ef:99:99", device: "veth42")
    try await Task.sleep(for: .milliseconds(200))
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    #expect(cache.outageCredentials(ip: "10.0.0.7", role: "old-role", wallNow: WallClock.system.nowPrecise()) == nil)
  }

  @Test func aLaggingServerNamingThePreviousPodIsNotBelieved() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let cache = PodCredentialCache(
      source: NoServer(), neighbors: try table(dir, mac: "de:ad:be:ef:00:07", device: "veth7"), conflictLimit: .milliseconds(300))
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old")) == .accepted)
    // A new pod got the IP (new link); the server has not seen it and still names the old pod.
    _ = try table(dir, mac: "de:ad:be:ef:99:99", device: "veth42")
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "old-role", uid: "uid-old")) == .conflict)
    let oldPod = PodIdentity(role: "old-role", uid: "uid-old").connectionKey
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: oldPod) == nil)
    #expect(cache.outageIdentity(ip: "10.0.0.7") == nil)
    // The server learns about the new pod: accepted at once.
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .accepted)
    #expect(cache.trustedIdentity(ip: "10.0.0.7")?.role == "new-role")
    // A pod whose interface really was re-created: the server's word wins after the limit.
    _ = try table(dir, mac: "de:ad:be:ef:11:11", device: "veth43")
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .conflict)
    try await Task.sleep(for: .milliseconds(400))
    #expect(cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "new-role", uid: "uid-new")) == .accepted)
  }

  @Test func keepAliveConnectionsKeepTheirPod() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r", uid: "u"))
    // A new connection without neighbor information needs the server again (window 0) ...
    #expect(cache.trustedIdentity(ip: "10.0.0.7") == nil)
    // ... further requests on a connection checked for this pod come from the same pod ...
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r", uid: "u").connectionKey)?.role == "r")
    // ... but not a connection checked for another pod, whose IP has moved on.
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r2", uid: "u2"))
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r", uid: "u").connectionKey) == nil)
    #expect(cache.trustedIdentity(ip: "10.0.0.7", connectionPod: PodIdentity(role: "r2", uid: "u2").connectionKey)?.role == "r2")
  }

  @Test func aNewPodUIDDropsThePreviousCredentials() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"))
    let credentials = Kiam_Credentials.with {
      $0.accessKeyID = "ASIAOLD"
      $0.expiration = RFC3339.format(epochSeconds: WallClock.system.now() + 3600)
    }
    cache.store(ip: "10.0.0.7", role: "r", credentials: CachedCredentials(credentials, roleARN: nil, now: WallClock.system.nowPrecise()), podUID: "uid-a")
    #expect(cache.warmCredentials(ip: "10.0.0.7", role: "r", wallNow: WallClock.system.nowPrecise())?.credentials.accessKeyID == "ASIAOLD")
    cache.confirm(ip: "10.0.0.7", identity: PodIdentity(role: "r", uid: "uid-b"))
    #expect(cache.warmCredentials(ip: "10.0.0.7", role: "r", wallNow: WallClock.system.nowPrecise()) == nil)
  }
}

@Suite struct WarmMemoTests {
  let ip = "10.0.0.7"
  let pod = PodIdentity(role: "r", uid: "uid-a")

  func credentials(_ key: String, lifetime: Int64 = 3600) -> CachedCredentials {
    let issued = Kiam_Credentials.with {
      $0.accessKeyID = key
      $0.expiration = RFC3339.format(epochSeconds: WallClock.system.now() + lifetime)
    }
    return CachedCredentials(issued, roleARN: nil, now: WallClock.system.nowPrecise())
  }

  /// A connection's request: the cache answer and the memo the connection keeps.
  func request(_ cache: PodCredentialCache, _ memo: inout WarmMemo?, role: String = "r", pod: PodIdentity? = nil, wallNow: Double? = nil)
    -> String?
  {
    cache.warmCredentials(
      ip: ip, role: role, wallNow: wallNow ?? WallClock.system.nowPrecise(), connectionPod: (pod ?? self.pod).connectionKey, memo: &memo
    )?.credentials.accessKeyID
  }

  @Test func aCheckedConnectionIsAnsweredFromItsMemoUntilTheCacheChanges() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"))
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    let first = try #require(memo)
    #expect(request(cache, &memo) == "ASIAONE")
    #expect(memo === first, "unchanged cache: the same memo answers")
    // New credentials: the memo is stale and replaced.
    cache.store(ip: ip, role: "r", credentials: credentials("ASIATWO"), podUID: "uid-a")
    #expect(request(cache, &memo) == "ASIATWO")
    #expect(memo !== first)
    // Another role than the memo's is looked up, not taken from the memo.
    #expect(request(cache, &memo, role: "other") == nil)
  }

  @Test func aMemoNeverOutlivesThePodItWasMadeFor() {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    // The server names a new pod for the IP: the old pod's connection gets nothing.
    cache.confirm(ip: ip, identity: PodIdentity(role: "r", uid: "uid-b"))
    #expect(request(cache, &memo) == nil)
    // Forgotten IP: nothing either, memo or not.
    cache.store(ip: ip, role: "r", credentials: credentials("ASIATHREE"), podUID: "uid-b")
    let podB = PodIdentity(role: "r", uid: "uid-b")
    #expect(request(cache, &memo, pod: podB) == "ASIATHREE")
    cache.forget(ip: ip)
    #expect(request(cache, &memo, pod: podB) == nil)
  }

  /// With our server, the agent's floor is the server's `--min-credential-lifetime` (sent with the
  /// credentials), and its background refresh starts half the server's `--session-refresh` before
  /// it; without (Go kiam), a quarter of the lifetime up to 15 minutes, refreshed at half up to 30.
  @Test func floorsFollowTheServer() {
    let now = WallClock.system.nowPrecise()
    let issued = Kiam_Credentials.with {
      $0.accessKeyID = "ASIAFLOOR"
      $0.expiration = RFC3339.format(epochSeconds: Int64(now) + 3600)
    }
    let ours = CachedCredentials(issued, roleARN: nil, minimumLifetime: 1800, refreshMargin: 300, now: now)
    #expect(ours.serveFloor == 1800)
    #expect(ours.refreshBelow == 1800 + 150)
    let goKiam = CachedCredentials(issued, roleARN: nil, now: now)
    #expect(abs(goKiam.serveFloor - 900) < 2)
    #expect(abs(goKiam.refreshBelow - 1800) < 2)
  }

  @Test func aMemoStopsAtTheServeFloorAndAtTheTrustWindow() async throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), connectionTrust: .milliseconds(200))
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    // 100 s of 3600 left is below the floor (15 minutes): not served from the memo.
    #expect(request(cache, &memo, wallNow: WallClock.system.nowPrecise() + 3500) == nil)
    #expect(request(cache, &memo) == "ASIAONE")
    // The server has not confirmed the pod within the trust window: no answer without it.
    try await Task.sleep(for: .milliseconds(300))
    #expect(request(cache, &memo) == nil)
  }

  @Test func answeringFromTheMemoStillKeepsTheEntryFromEviction() throws {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), touchInterval: .zero)
    cache.store(ip: ip, role: "r", credentials: credentials("ASIAONE"), podUID: "uid-a")
    var memo: WarmMemo?
    #expect(request(cache, &memo) == "ASIAONE")
    let before = try #require(cache.entry(ip)).lastUsed
    let first = memo
    #expect(request(cache, &memo) == "ASIAONE")
    #expect(memo !== first, "touched: a renewed memo")
    #expect(try #require(cache.entry(ip)).lastUsed > before)
  }

  @Test func concurrentChangesAndMemoReadsNeverServeAnotherPodsCredentials() async {
    let cache = PodCredentialCache(source: NoServer(), neighbors: NeighborTable(path: "/nonexistent"), identityMaxAge: .zero)
    let podB = PodIdentity(role: "r", uid: "uid-b")
    cache.store(ip: ip, role: "r", credentials: credentials("ASIA-A"), podUID: "uid-a")
    let readersDone = Counter()
    let readers = [pod, podB]
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        // The IP's pod alternates until both readers are through.
        var round = 0
        while readersDone.value.load(ordering: .acquiring) < readers.count {
          let (uid, key) = round % 2 == 0 ? ("uid-b", "ASIA-B") : ("uid-a", "ASIA-A")
          cache.store(ip: ip, role: "r", credentials: credentials(key), podUID: uid)
          round += 1
        }
      }
      for reader in readers {
        group.addTask {
          defer { readersDone.value.add(1, ordering: .releasing) }
          var memo: WarmMemo?
          var answered = 0
          // Until answered plenty, memo or not (bounded, so a broken cache fails instead of hanging).
          for _ in 0..<2_000_000 where answered < 20_000 {
            let answer = cache.warmCredentials(
              ip: ip, role: "r", wallNow: WallClock.system.nowPrecise(), connectionPod: reader.connectionKey, memo: &memo)
            guard let answer else { continue }
            answered += 1
            // Always one pod's own credentials: the memo's copy or the entry as it is.
            #expect(answer.credentials.accessKeyID == (answer.identity.uid == "uid-a" ? "ASIA-A" : "ASIA-B"))
            if let memo { #expect(memo.credentials.accessKeyID == (memo.identity.uid == "uid-a" ? "ASIA-A" : "ASIA-B")) }
          }
          #expect(answered == 20_000, "\(reader.uid) was answered")
        }
      }
    }
  }
}

/// A counter tasks share.
private final class Counter: Sendable {
  let value = Atomic<Int>(0)
}

extension CachedCredentials: Equatable {
  public static func == (a: CachedCredentials, b: CachedCredentials) -> Bool { a.accessKeyID == b.accessKeyID && a.expiration == b.expiration }
}
