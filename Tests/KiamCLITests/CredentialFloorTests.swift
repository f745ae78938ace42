import Foundation
import KiamAgent
import KiamServer
import KiamShared
import KiamTestSupport
import Logging
import Testing

/// README's promise: credentials a pod is served always have at least `--min-credential-lifetime`
/// (30 minutes) left. A server and an agent (in this process, each with its real services, talking
/// gRPC over mutual TLS; STS from moto) share a manual clock that runs two and a half credential
/// lifetimes, a minute at a time; the pod asks after every minute.
@Suite(.serialized) struct CredentialFloorTests {
  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func servedCredentialsKeepTheFloorThroughSeveralLifetimes() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try dir.writeManifests(
      [TestNamespace(name: "apps", permitted: ".*")],
      [TestPod(namespace: "apps", name: "local", uid: "uid-local", ip: "127.0.0.1", role: "app-floor")])
    let serverPort = try FreePort.next()
    let agentPort = try FreePort.next()
    let clock = ManualWallClock()
    let logger = Logger(label: "floor-test")
    let agentMetrics = KiamMetrics()
    let server = ServerConfiguration(
      tls: TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.server.key, caPath: pki.server.ca),
      bind: HostPort(host: "127.0.0.1", port: serverPort), podManifests: "\(dir.path)/manifests",
      roleBaseARN: "arn:aws:iam::123456789012:role/", stsEndpoint: lab.endpoint,
      environment: ["AWS_ACCESS_KEY_ID": "AKIAFLOOR", "AWS_SECRET_ACCESS_KEY": "unchecked"])
    let agent = AgentConfiguration(
      tls: TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca),
      serverAddress: HostPort(host: "127.0.0.1", port: serverPort), port: agentPort, host: "127.0.0.1",
      metadataEndpoint: lab.endpoint)
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask { try await ServerApplication(configuration: server, logger: logger, clock: .manual(clock)).run() }
      group.addTask {
        try await AgentApplication(configuration: agent, logger: logger, metrics: agentMetrics, clock: .manual(clock))
          .run()
      }
      defer { group.cancelAll() }
      try await FreePort.waitUntilListening(agentPort)
      let path = "/latest/meta-data/iam/security-credentials/app-floor"
      #expect(
        await eventually(timeout: .seconds(20)) { (try? HTTPExchange.send(port: agentPort, path: path).status) == 200 })

      var keys: [String] = []
      var least = Double.infinity
      for minute in 1...150 {
        // STS answers on the same clock (set first: the move wakes refreshes at once).
        try await lab.setFaults(["clock_offset": "\(minute * 60)"])
        clock.advance(by: .seconds(60))
        // The services the move woke settle.
        try await Task.sleep(for: .milliseconds(100))
        let answer = try HTTPExchange.send(port: agentPort, path: path)
        try #require(answer.status == 200, "minute \(minute): \(answer.status) \(answer.body)")
        let document = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: String] ?? [:]
        let expiration = try #require(RFC3339.parse(document["Expiration"] ?? ""))
        let remaining = Double(expiration) - clock.now
        least = min(least, remaining)
        #expect(remaining >= 30 * 60, "minute \(minute): served with \(Int(remaining)) s left")
        if let key = document["AccessKeyId"], keys.last != key { keys.append(key) }
      }
      // Refreshed ahead (one set of credentials every ~25 minutes), not on every request.
      #expect((6...9).contains(keys.count), "\(keys.count) credentials in 150 minutes")
      let assumed = try await lab.stats().calls("arn:aws:iam::123456789012:role/app-floor")
      #expect(assumed <= 10, "\(assumed) AssumeRole calls")
      let asked = try PrometheusText(agentMetrics.emitToString()).samples.filter {
        $0.name == "grpc_client_started_total" && $0.labels["grpc_method"] == "GetPodCredentials"
      }.reduce(0) { $0 + $1.value }
      #expect(asked <= 40, "the agent asked the server \(asked) times")
      print(
        "credential floor: least remaining served \(Int(least)) s, \(keys.count) credentials, \(assumed) AssumeRole, \(Int(asked)) agent calls"
      )
    }
  }
}
