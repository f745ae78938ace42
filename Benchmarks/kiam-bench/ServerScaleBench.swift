import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import KiamShared
import KiamTestSupport
import Logging

/// Server scale: 1k, 10k and 50k pods over 1k roles and 100 namespaces in the Kubernetes API
/// test server; a fresh kiam server (release build) syncs, prefetches every identity from moto,
/// then answers GetPodCredentials at 1,000 requests/s from a grpcio client.
struct ServerScaleBench {
  let settings: BenchSettings
  let report: BenchReport
  static let roles = 1_000
  static let namespaces = 100

  func run() async throws {
    let directory = try TemporaryDirectory(prefix: "kiam-bench-scale")
    defer { directory.remove() }
    let pki = try TestPKIFixture.make(in: directory.path)
    let lab = try await STSLab()
    defer { lab.stop() }
    var rows: [[String]] = [[
      "pods", "healthy after start (s)", "all identities prefetched (s)", "STS calls", "RSS settled (MiB)",
      "CPU to sync+prefetch (s)", "GetPodCredentials p50 / p99 / p99.9 at 1,000/s (ms)", "errors", "CPU per 1,000 requests (ms)",
      "RSS after load (MiB)",
    ]]
    var results: [String: Any] = [:]
    for pods in settings.scalePods {
      progress("server scale: \(pods) pods")
      let row = try await measure(pods: pods, pki: pki, lab: lab, directory: directory)
      rows.append(row.cells)
      results["\(pods)"] = row.json
    }
    report.table(
      "Server scale (\(Self.roles) roles, \(Self.namespaces) namespaces)", rows,
      notes: [
        "\"Healthy\" is the first `GetHealth` that answers ok (both caches synced), polled every 10 ms from process start, "
          + "so it includes process start and TLS set-up. \"Prefetched\" is when moto has answered one AssumeRole per "
          + "identity (role ARN); moto itself handles about 200–300 AssumeRole calls per second on this machine, which bounds "
          + "that column. The load is an open-loop grpcio client (scripts/bench/grpc_load.py) over mutual TLS, one request "
          + "per millisecond over \(settings.quick ? 3 : 10) s, round-robin over one pod per role. \"RSS settled\" is read "
          + "35 s after start (after the server's start-up memory trims) or 2 s after the last prefetch, whichever is later.",
      ])
    report.record("server_scale", results)
  }

  struct Row {
    var cells: [String]
    var json: [String: Any]
  }

  private func measure(pods: Int, pki: TestPKIFixture, lab: STSLab, directory: TemporaryDirectory) async throws -> Row {
    let ca = try TestCA(name: "kubernetes")
    let api = try KubernetesAPITestServer(certificate: try ca.issue(commonName: "api", ipAddresses: ["127.0.0.1"]), tokens: ["t"])
    let apiPort = try await api.start()
    do {
      let row = try await measure(pods: pods, api: api, apiPort: apiPort, ca: ca, pki: pki, lab: lab, directory: directory)
      await api.stop()
      return row
    } catch {
      await api.stop()
      throw error
    }
  }

  private func measure(
    pods: Int, api: KubernetesAPITestServer, apiPort: Int, ca: TestCA, pki: TestPKIFixture, lab: STSLab,
    directory: TemporaryDirectory
  ) async throws -> Row {
    for index in 0..<Self.namespaces { api.upsertNamespace(TestNamespace(name: "ns-\(index)", permitted: ".*")) }
    var seeded: [TestPod] = []
    seeded.reserveCapacity(pods)
    for index in 0..<pods {
      seeded.append(
        TestPod(
          namespace: "ns-\(index % Self.namespaces)", name: "pod-\(index)", uid: "uid-\(index)", ip: Self.address(index),
          nodeName: "node-\(index % 200)", role: "role-\(index % Self.roles)"))
    }
    api.seedPods(seeded)
    let kubeconfig = try directory.write(
      "kubeconfig-\(pods)",
      """
      current-context: c
      contexts: [{name: c, context: {cluster: k, user: u}}]
      clusters: [{name: k, cluster: {server: "https://127.0.0.1:\(apiPort)", certificate-authority-data: \(Data(ca.pem.utf8).base64EncodedString())}}]
      users: [{name: u, user: {token: t}}]
      """)
    try await lab.resetCounters()
    let port = try FreePort.next()
    let clock = ContinuousClock()
    let started = clock.now
    let server = try KiamProcess(
      ["server", "--bind=127.0.0.1:\(port)", "--kubeconfig=\(kubeconfig)", "--sts-endpoint=\(lab.endpoint)",
       "--role-base-arn=arn:aws:iam::123456789012:role/", "--level=warn"] + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIABENCH", "AWS_SECRET_ACCESS_KEY": "unchecked", "HOME": directory.path, "PATH": "/usr/bin:/bin"])
    do {
      let row = try await load(server: server, started: started, pods: pods, port: port, pki: pki, lab: lab, directory: directory)
      server.signal(SIGTERM)
      _ = await server.wait(timeout: .seconds(10))
      return row
    } catch {
      server.signal(SIGKILL)
      _ = await server.wait(timeout: .seconds(10))
      throw error
    }
  }

  private func load(
    server: KiamProcess, started: ContinuousClock.Instant, pods: Int, port: Int, pki: TestPKIFixture, lab: STSLab,
    directory: TemporaryDirectory
  ) async throws -> Row {
    let clock = ContinuousClock()
    let healthy = try await waitUntilHealthy(port: port, pki: pki, server: server) - started
    let identities = min(pods, Self.roles)
    var prefetched = Duration.zero
    while true {
      let calls = try await lab.stats().assume_role.values.reduce(0, +)
      if calls >= identities {
        prefetched = clock.now - started
        break
      }
      guard clock.now - started < .seconds(300) else { throw BenchError("prefetch did not finish: \(calls) of \(identities)") }
      try await Task.sleep(for: .milliseconds(20))
    }
    // Settled: 2 s after the last fetch, and after the server's start-up memory trims (10 s and 30 s).
    try await Task.sleep(until: max(clock.now + .seconds(2), started + .seconds(35)))
    let calls = try await lab.stats().assume_role.values.reduce(0, +)
    let synced = ProcessUsage.read(server.pid)

    // Load: one pod per role, round-robin.
    let targets = (0..<identities).map { [Self.address($0), "role-\($0 % Self.roles)"] }
    let targetsFile = directory.path + "/targets-\(pods).json"
    try JSONSerialization.data(withJSONObject: targets).write(to: URL(fileURLWithPath: targetsFile))
    let seconds = settings.quick ? 3 : 10
    let load = try Shell.run(
      "python3 \(KiamProcess.packageRoot)/scripts/bench/grpc_load.py 127.0.0.1:\(port) \(pki.agent.ca) \(pki.agent.certificate) "
        + "\(pki.agent.key) localhost 1000 \(seconds) \(targetsFile) 2>&1")
    let loaded = ProcessUsage.read(server.pid)
    guard let line = load.output.split(separator: "\n").last(where: { $0.hasPrefix("{") }),
      let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
    else { throw BenchError("grpc_load.py failed: \(load.output)") }
    let sent = result["sent"] as? Int ?? 0
    let ok = result["ok"] as? Int ?? 0
    let cpuPerThousand = (loaded.cpuSeconds - synced.cpuSeconds) * 1000 / Double(max(sent, 1)) * 1000
    func ms(_ key: String) -> String { Format.fixed(result[key] as? Double ?? .nan, 2) }
    return Row(
      cells: [
        Format.thousands(Double(pods)), Format.fixed(healthy.seconds, 2), Format.fixed(prefetched.seconds, 2), "\(calls)",
        Format.fixed(synced.rssMiB), Format.fixed(synced.cpuSeconds, 2),
        "\(ms("p50_ms")) / \(ms("p99_ms")) / \(ms("p999_ms"))", "\(sent - ok) of \(sent)", Format.fixed(cpuPerThousand),
        Format.fixed(loaded.rssMiB),
      ],
      json: [
        "healthy_s": healthy.seconds, "prefetched_s": prefetched.seconds, "sts_calls": calls, "identities": identities,
        "rss_synced_mib": synced.rssMiB, "cpu_synced_s": synced.cpuSeconds, "load": result,
        "cpu_ms_per_1000": cpuPerThousand, "rss_after_load_mib": loaded.rssMiB,
      ])
  }

  /// A unique pod address for `index` (10.64.0.0 upwards).
  static func address(_ index: Int) -> String {
    "10.\(64 + index / 65_536).\(index / 256 % 256).\(index % 256)"
  }

  /// Polls GetHealth every 10 ms until it answers ok; returns when.
  private func waitUntilHealthy(port: Int, pki: TestPKIFixture, server: KiamProcess) async throws -> ContinuousClock.Instant {
    let logger = Logger(label: "bench")
    let store = try await TLSMaterialStore(
      files: TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca),
      role: .client, metrics: nil, logger: logger)
    let transport = try KiamTransports.client(server: HostPort(host: "localhost", port: port), store: store, settings: .defaults)
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(300)
    return try await withGRPCClient(transport: transport) { client in
      let kiam = Kiam_KiamService.Client(wrapping: client)
      var options = CallOptions.defaults
      options.timeout = .seconds(1)
      while clock.now < deadline {
        if (try? await kiam.getHealth(Kiam_GetHealthRequest(), options: options).message) == "ok" { return clock.now }
        guard server.isRunning else { throw BenchError("the server exited: \(server.standardError)") }
        try await Task.sleep(for: .milliseconds(10))
      }
      throw BenchError("the server never became healthy: \(server.standardError)")
    }
  }
}
