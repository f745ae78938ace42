import Foundation
import KiamShared
import KiamTestSupport

/// Steady state: a server and an agent left alone with 10 pods whose credentials were served
/// once. Counts STS calls per identity and agent→server calls over time, and samples memory and
/// CPU. Runs with `--session-duration=15m` so refreshes happen within the run; the refresh rule
/// is the same for every session length, so the calls per hour at the defaults follow from it.
struct SteadyStateBench {
  let settings: BenchSettings
  let report: BenchReport
  static let pods = 10

  func run() async throws {
    let directory = try TemporaryDirectory(prefix: "kiam-bench-steady")
    defer { directory.remove() }
    let pki = try TestPKIFixture.make(in: directory.path)
    let lab = try await STSLab()
    defer { lab.stop() }
    var manifests = "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps, annotations: {iam.amazonaws.com/permitted: \".*\"}}\n"
    for index in 0..<Self.pods {
      manifests += """
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: p\(index), namespace: apps, uid: uid-\(index), annotations: {iam.amazonaws.com/role: steady-\(index)}}
        status: {phase: Running, podIP: 10.9.0.\(index + 1)}

        """
    }
    try directory.write("manifests/pods.yaml", manifests)
    let serverPort = try FreePort.next()
    let serverMetrics = try FreePort.next()
    let agentPort = try FreePort.next()
    let server = try KiamProcess(
      ["server", "--bind=127.0.0.1:\(serverPort)", "--pod-manifests=\(directory.path)/manifests", "--sts-endpoint=\(lab.endpoint)",
       "--role-base-arn=arn:aws:iam::123456789012:role/", "--session-duration=15m",
       "--prometheus-listen-addr=127.0.0.1:\(serverMetrics)"] + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIABENCH", "AWS_SECRET_ACCESS_KEY": "unchecked", "HOME": directory.path, "PATH": "/usr/bin:/bin"])
    let agent = try KiamProcess(
      ["agent", "--host=127.0.0.1", "--port=\(agentPort)", "--server-address=localhost:\(serverPort)", "--allow-ip-query",
       "--metadata-endpoint=\(lab.endpoint)", "--prometheus-listen-addr=127.0.0.1:\(try FreePort.next())"] + pki.agent.arguments)
    do {
      try await measure(server: server, agent: agent, lab: lab, serverMetrics: serverMetrics, serverPort: serverPort, agentPort: agentPort)
    } catch {
      for process in [agent, server] { process.signal(SIGKILL) }
      throw error
    }
    for process in [agent, server] {
      process.signal(SIGTERM)
      _ = await process.wait(timeout: .seconds(10))
    }
  }

  private func measure(
    server: KiamProcess, agent: KiamProcess, lab: STSLab, serverMetrics: Int, serverPort: Int, agentPort: Int
  ) async throws {
    try await FreePort.waitUntilListening(serverPort)
    try await FreePort.waitUntilListening(agentPort)
    let clock = ContinuousClock()
    let started = clock.now
    for index in 0..<Self.pods {
      let path = "/latest/meta-data/iam/security-credentials/steady-\(index)?ip=10.9.0.\(index + 1)"
      var served = false
      for _ in 0..<50 where !served {
        served = (try? HTTPExchange.send("GET", port: agentPort, path: path))?.status == 200
        if !served { try await Task.sleep(for: .milliseconds(200)) }
      }
      guard served else { throw BenchError("the agent did not serve steady-\(index): \(agent.standardError)") }
    }
    let afterServing = (ProcessUsage.read(server.pid), ProcessUsage.read(agent.pid))
    // Sample every 5 s: STS calls per role, agent→server credential calls, memory, CPU.
    var firstSeen: [String: [Double]] = [:]
    var lastCounts: [String: Int] = [:]
    var samples: [[String: Any]] = []
    let total = Duration.seconds(settings.steadyMinutes * 60)
    progress("steady state: sampling for \(Format.fixed(settings.steadyMinutes)) minutes")
    while clock.now - started < total {
      let elapsed = (clock.now - started).seconds
      let stats = try await lab.stats()
      for (role, count) in stats.assume_role where count != lastCounts[role] {
        firstSeen[role, default: []].append(elapsed)
        lastCounts[role] = count
      }
      let serverUsage = ProcessUsage.read(server.pid)
      let agentUsage = ProcessUsage.read(agent.pid)
      samples.append([
        "t_s": elapsed, "sts_calls": stats.assume_role.values.reduce(0, +), "server_rss_mib": serverUsage.rssMiB,
        "agent_rss_mib": agentUsage.rssMiB, "server_cpu_s": serverUsage.cpuSeconds, "agent_cpu_s": agentUsage.cpuSeconds,
        "agent_to_server_credential_calls": try credentialCalls(port: serverMetrics),
      ])
      try await Task.sleep(for: .seconds(5))
    }
    let end = (ProcessUsage.read(server.pid), ProcessUsage.read(agent.pid))
    let intervals = Sample(firstSeen.values.flatMap { times in zip(times.dropFirst(), times).map { $0 - $1 } })
    let stsCalls = lastCounts.values.reduce(0, +)
    let calls = try credentialCalls(port: serverMetrics)
    let minutes = (clock.now - started).seconds / 60
    let idleCPU = ((end.0.cpuSeconds - afterServing.0.cpuSeconds) + (end.1.cpuSeconds - afterServing.1.cpuSeconds)) / minutes
    let measuredPerHour = intervals.isEmpty ? Double.nan : 3600 / intervals.median
    // The rule (CredentialsCache.refreshTime): refresh min-lifetime + session-refresh (+0–20 % of
    // session-refresh jitter) before expiry, but never before half the lifetime has passed;
    // min-lifetime is 30 m, or a third of sessions under 45 m. At 15 m and at 60 m sessions the
    // half-way bound is the later one.
    func perHour(sessionMinutes: Double) -> Double {
      let minimum = sessionMinutes < 45 ? sessionMinutes / 3 : 30
      return 60 / max(sessionMinutes - minimum - 5 - 0.5, sessionMinutes / 2)
    }
    report.table(
      "Steady state (\(Self.pods) pods, \(Self.pods) identities, \(Format.fixed(minutes)) minutes)",
      [
        ["figure", "value"],
        ["STS calls in the run (identities × (1 + refreshes))", "\(stsCalls)"],
        ["refresh interval per identity at --session-duration=15m (measured)", intervals.isEmpty ? "no refresh seen" : intervals.spread { Format.fixed($0 / 60, 2) + " min" }],
        ["STS calls per hour per identity at 15m sessions: measured / rule", "\(Format.fixed(measuredPerHour, 2)) / \(Format.fixed(perHour(sessionMinutes: 15), 2))"],
        ["STS calls per hour per identity at the default 60m sessions (rule)", Format.fixed(perHour(sessionMinutes: 60), 2)],
        ["Go kiam at its defaults (15m sessions, refreshed 10–11 min after issue)", "≈ 5.5–6"],
        ["agent→server GetPodCredentials calls in the run (\(Self.pods) pods)", "\(Int(calls))"],
        ["server RSS idle: after serving / at the end (MiB)", "\(Format.fixed(afterServing.0.rssMiB)) / \(Format.fixed(end.0.rssMiB))"],
        ["agent RSS idle: after serving / at the end (MiB)", "\(Format.fixed(afterServing.1.rssMiB)) / \(Format.fixed(end.1.rssMiB))"],
        ["idle CPU, server + agent (CPU seconds per minute)", Format.fixed(idleCPU, 3)],
      ],
      notes: [
        "The agent refreshes a pod's credentials from the server when less than half their lifetime (at most 30 min) is "
          + "left, so agent→server calls follow the server's refreshes; between refreshes a warm agent makes no calls."
      ])
    report.record("steady_state", [
      "samples": samples, "refresh_intervals_s": intervals.values, "sts_calls": stsCalls, "credential_calls": calls,
      "per_hour_15m_measured": measuredPerHour, "per_hour_15m_rule": perHour(sessionMinutes: 15),
      "per_hour_60m_rule": perHour(sessionMinutes: 60), "idle_cpu_s_per_min": idleCPU,
    ])
  }

  /// The server's count of handled GetPodCredentials calls.
  private func credentialCalls(port: Int) throws -> Double {
    let text = try HTTPExchange.send("GET", port: port, path: "/metrics").body
    return try PrometheusText(text).samples.filter { $0.name == "grpc_server_handled_total" && $0.labels["grpc_method"] == "GetPodCredentials" }
      .map(\.value).reduce(0, +)
  }
}
