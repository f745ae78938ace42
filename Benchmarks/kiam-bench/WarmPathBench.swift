import Foundation
import KiamTestSupport

/// Warm credentials: wrk from a pod's network namespace through the agent's DNAT rule, and on
/// the node's loopback without DNAT, against the agent and against nginx serving the identical
/// JSON bytes from a file at the same address shape, alternating round by round.
struct WarmPathBench {
  let settings: BenchSettings
  let report: BenchReport

  struct Run {
    var requestsPerSecond: Double
    var p50: Double
    var p99: Double
    var p999: Double
    var cpuMicrosPerRequest: Double
    var errors: Int
    /// Milliseconds per second of the run the server's threads waited for a CPU while runnable.
    var runQueueMillisPerSecond: Double = 0
    /// Server threads preempted, per second of the run.
    var preemptionsPerSecond: Double = 0
    /// Server threads going to sleep (waiting for work), per second of the run.
    var sleepsPerSecond: Double = 0
  }

  func run() async throws {
    progress("warm path: setting up the node, the pod and nginx")
    let env = try await BenchCleanup.nodeEnvironment()
    var nginx: KiamProcess?
    do {
      try await measure(env, nginx: &nginx)
    } catch {
      nginx?.signal(SIGTERM)
      await BenchCleanup.tearDown(env)
      throw error
    }
    nginx?.signal(SIGTERM)
    _ = await nginx?.wait(timeout: .seconds(5))
    await BenchCleanup.tearDown(env)
  }

  private func measure(_ env: NodeEnvironment, nginx: inout KiamProcess?) async throws {
    env.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
    let podIP = try env.lab.addPod("bench")
    env.api.upsertPod(TestPod(namespace: "apps", name: "bench", ip: podIP, role: "app-bench"))
    env.api.upsertPod(TestPod(namespace: "apps", name: "loop", ip: "127.0.0.1", role: "app-loop"))
    try await env.startServer()
    try await env.startAgent()
    guard let agent = env.agent else { return }
    let agentStarted = ContinuousClock.now
    try await Task.sleep(for: .seconds(2))
    let justStarted = ProcessUsage.read(agent.pid)
    // The agent gives back start-up pages 10 s and 30 s after start (MemoryTrimService); its
    // periodic work (keepalive pings every 10 s, DNS every 15 s, the rule check every 30 s)
    // faults some back in, so idle is a minute of samples, not one.
    progress("warm path: sampling the idle agent's memory 35–95 s after start")
    let idle = try await MemorySeries.sample(agent.pid, from: agentStarted + .seconds(35), seconds: 60)

    // The bytes the agent serves, for nginx to serve from a file.
    let credentialsPath = Self.credentialsPath
    let podBody = try env.lab.run(inPod: "bench", "curl -sf http://169.254.169.254\(credentialsPath)app-bench").output
    let loopBody = try env.lab.run(onNode: "curl -sf http://127.0.0.1:\(env.agentPort)\(credentialsPath)app-loop").output
    guard podBody.contains("\"Code\":\"Success\""), loopBody.contains("\"Code\":\"Success\"") else {
      throw BenchError("the agent did not serve credentials: \(podBody) \(loopBody) \(agent.standardError)")
    }
    let warmedUp = ProcessUsage.read(agent.pid)
    let root = env.directory.path + "/nginx"
    try FileManager.default.createDirectory(atPath: root + "/www" + credentialsPath, withIntermediateDirectories: true)
    try podBody.write(toFile: root + "/www" + credentialsPath + "app-bench", atomically: true, encoding: .utf8)
    try loopBody.write(toFile: root + "/www" + credentialsPath + "app-loop", atomically: true, encoding: .utf8)
    let nginxPort = 8182
    try """
      worker_processes 2;
      pid \(root)/nginx.pid;
      error_log \(root)/error.log;
      events { worker_connections 4096; }
      http {
        access_log off;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
        default_type application/json;
        server {
          listen \(env.lab.nodeIP):\(nginxPort);
          listen 127.0.0.1:\(nginxPort);
          root \(root)/www;
        }
      }
      """.write(toFile: root + "/nginx.conf", atomically: true, encoding: .utf8)
    _ = try Shell.run("chmod -R a+rX \(env.directory.path)")
    let server = try KiamProcess(
      ["netns", "exec", env.lab.node, "nginx", "-c", root + "/nginx.conf", "-g", "daemon off;"], executable: "/usr/sbin/ip")
    nginx = server
    guard try await env.waitForNode(port: nginxPort) else { throw BenchError("nginx did not start: \(server.standardError)") }
    let nginxRule =
      "-p tcp -d 169.254.169.254 --dport 80 -i \(env.lab.podInterfacePrefix)+ -j DNAT --to-destination \(env.lab.nodeIP):\(nginxPort)"
    // Same bytes through the same DNAT shape.
    _ = try env.lab.run(onNode: "iptables -w 5 -t nat -I PREROUTING 1 \(nginxRule)")
    let viaNginx = try env.lab.run(inPod: "bench", "curl -sf http://169.254.169.254\(credentialsPath)app-bench").output
    _ = try env.lab.run(onNode: "iptables -w 5 -t nat -D PREROUTING \(nginxRule)")
    guard viaNginx == podBody else { throw BenchError("nginx does not serve the agent's bytes: \(viaNginx)") }

    var results: [String: Any] = [:]
    for placement in settings.placements {
      for path in ["dnat", "loopback"] {
        var rows: [[String]] = [[
          "connections", "kiam req/s", "nginx req/s", "ratio", "kiam p50 / p99 / p99.9 (ms)", "nginx p50 / p99 / p99.9 (ms)",
          "p99 ratio", "CPU µs/req kiam / nginx", "CPU ratio",
        ]]
        for connections in settings.connections {
          var kiamRuns: [Run] = []
          var nginxRuns: [Run] = []
          for round in 0..<settings.rounds {
            let order = round % 2 == 0 ? ["kiam", "nginx"] : ["nginx", "kiam"]
            for target in order {
              let isKiam = target == "kiam"
              let point = Point(path: path, placement: placement, connections: connections, isKiam: isKiam)
              progress("warm path \(path) \(placement.rawValue) cores c=\(connections) round \(round + 1)/\(settings.rounds): \(target)")
              let run = try measureOnce(point, env: env, agent: agent, nginx: server, nginxRule: nginxRule, nginxPort: nginxPort)
              progress(
                "  \(target): p50 \(Format.fixed(run.p50, 2)) p99 \(Format.fixed(run.p99, 2)) ms, "
                  + "run-queue wait \(Format.fixed(run.runQueueMillisPerSecond)) ms/s, \(Int(run.preemptionsPerSecond)) preemptions/s, "
                  + "\(Int(run.sleepsPerSecond)) sleeps/s")
              if isKiam { kiamRuns.append(run) } else { nginxRuns.append(run) }
            }
          }
          let pairs = zip(kiamRuns, nginxRuns)
          let ratio = Sample(pairs.map { $0.requestsPerSecond / $1.requestsPerSecond })
          let p99Ratio = Sample(pairs.map { $0.p99 / $1.p99 })
          let cpuRatio = Sample(pairs.map { $0.cpuMicrosPerRequest / $1.cpuMicrosPerRequest })
          func latencies(_ runs: [Run]) -> String {
            [Sample(runs.map(\.p50)), Sample(runs.map(\.p99)), Sample(runs.map(\.p999))].map { Format.fixed($0.median, 2) }
              .joined(separator: " / ")
          }
          rows.append([
            "\(connections)",
            Sample(kiamRuns.map(\.requestsPerSecond)).spread(Format.thousands),
            Sample(nginxRuns.map(\.requestsPerSecond)).spread(Format.thousands),
            ratio.spread(Format.ratio),
            latencies(kiamRuns), latencies(nginxRuns),
            p99Ratio.spread(Format.ratio),
            "\(Format.fixed(Sample(kiamRuns.map(\.cpuMicrosPerRequest)).median)) / \(Format.fixed(Sample(nginxRuns.map(\.cpuMicrosPerRequest)).median))",
            cpuRatio.spread(Format.ratio),
          ])
          let errors = (kiamRuns + nginxRuns).map(\.errors).reduce(0, +)
          if errors > 0 { progress("warning: \(errors) socket errors or non-2xx answers at c=\(connections) (\(path))") }
          results["\(path)-c\(connections)\(placement.resultSuffix)"] = [
            "kiam": kiamRuns.map(Self.json), "nginx": nginxRuns.map(Self.json), "errors": errors,
          ]
        }
        let title = path == "dnat"
          ? "Warm credentials through the DNAT rule (wrk in a pod namespace → 169.254.169.254:80), \(placement.title)"
          : "Warm credentials on the node's loopback (no DNAT), \(placement.title)"
        report.table(title, rows, notes: [
          "Median of \(settings.rounds) rounds of \(settings.seconds) s each (min–max in brackets); kiam and nginx alternate "
            + "within each round, and ratios are taken round by round. CPU is the server side only (the agent; nginx master "
            + "and workers), from /proc, divided by the requests served. \(placement.note)",
        ])
      }
    }
    try burst(env, nginxRule: nginxRule, nginxPort: nginxPort, credentialsPath: credentialsPath, results: &results)
    let loaded = ProcessUsage.read(agent.pid)
    // The agent trims once it has been idle for a 10 s period after the load.
    let loadEnded = ContinuousClock.now
    progress("warm path: sampling the agent's memory 30–90 s after the load")
    let settled = try await MemorySeries.sample(agent.pid, from: loadEnded + .seconds(30), seconds: 60)
    func row(_ state: String, _ usage: ProcessUsage) -> [String] {
      [state, Format.fixed(usage.rssMiB), Format.fixed(usage.anonymousMiB), Format.fixed(usage.rssMiB - usage.anonymousMiB)]
    }
    report.table("Agent memory", [
      ["state", "RSS (MiB)", "of which anonymous", "of which file-backed (code, libraries)"],
      row("2 s after start (before the start-up trims)", justStarted),
      row("idle, 35–95 s after start, nothing served yet: median", idle.median),
      row("idle, 35–95 s after start: largest sample", idle.largest),
      row("two pods served once", warmedUp),
      row("right after the last warm-path run", loaded),
      row("30–90 s after the load (trimmed once idle): median", settled.median),
      row("30–90 s after the load: largest sample", settled.largest),
    ], notes: [
      "The idle rows are \(idle.count) samples, one a second (the agent's periodic work, keepalive pings every 10 s, "
        + "DNS every 15 s, the rule check every 30 s, faults some code back in after each trim); the largest sample is "
        + "the one with the largest RSS. Peak RSS (VmHWM) over the whole run: \(Format.fixed(settled.largest.peakRSSMiB)) "
        + "MiB, reached during start-up before the first trim. File-backed pages are the executable's code, shared with "
        + "the page cache."
    ])
    results["agent_rss_mib"] = [
      "just_started": justStarted.rssMiB, "idle": idle.median.rssMiB, "idle_max": idle.largest.rssMiB,
      "warm": warmedUp.rssMiB, "after_load": loaded.rssMiB, "after_load_trimmed": settled.median.rssMiB,
      "after_load_trimmed_max": settled.largest.rssMiB, "peak": settled.largest.peakRSSMiB,
      "idle_anonymous": idle.median.anonymousMiB,
    ]
    report.record("warm_path", results)
  }

  static let credentialsPath = "/latest/meta-data/iam/security-credentials/"

  /// One point of the warm-path grid.
  struct Point {
    var path: String
    var placement: Placement
    var connections: Int
    var isKiam: Bool
  }

  /// One wrk run against the agent or nginx, with the server's CPU and scheduler counters.
  private func measureOnce(
    _ point: Point, env: NodeEnvironment, agent: KiamProcess, nginx: KiamProcess, nginxRule: String, nginxPort: Int
  ) throws -> Run {
    let credentialsPath = Self.credentialsPath
    let url: String
    let command: (String) throws -> (status: Int32, output: String)
    if point.path == "dnat" {
      url = "http://169.254.169.254\(credentialsPath)app-bench"
      command = { try env.lab.run(inPod: "bench", $0) }
      if !point.isKiam { _ = try env.lab.run(onNode: "iptables -w 5 -t nat -I PREROUTING 1 \(nginxRule)") }
    } else {
      url = "http://127.0.0.1:\(point.isKiam ? env.agentPort : nginxPort)\(credentialsPath)app-loop"
      command = { try env.lab.run(onNode: $0) }
    }
    defer {
      if point.path == "dnat" && !point.isKiam {
        _ = try? env.lab.run(onNode: "iptables -w 5 -t nat -D PREROUTING \(nginxRule)")
      }
    }
    let pid = point.isKiam ? agent.pid : nginx.pid
    let serverPIDs = [pid] + (point.isKiam ? [] : ProcessUsage.children(of: pid))
    try point.placement.pin(server: serverPIDs)
    let before = ProcessUsage.read(pid, withChildren: !point.isKiam, scheduling: true)
    let lua = KiamProcess.packageRoot + "/scripts/bench/wrk_report.lua"
    let wrk = "wrk -t\(min(2, point.connections)) -c\(point.connections) -d\(settings.seconds)s -s \(lua) \(url)"
    let output = try command(point.placement.clientPrefix + wrk).output
    let after = ProcessUsage.read(pid, withChildren: !point.isKiam, scheduling: true)
    try point.placement.unpin(server: serverPIDs)
    var run = try Self.parse(output, cpuSeconds: after.cpuSeconds - before.cpuSeconds)
    let seconds = Double(settings.seconds)
    run.runQueueMillisPerSecond = (after.runQueueSeconds - before.runQueueSeconds) * 1000 / seconds
    run.preemptionsPerSecond = Double(after.preemptions - before.preemptions) / seconds
    run.sleepsPerSecond = Double(after.sleeps - before.sleeps) / seconds
    return run
  }

  /// New connections at once (pods starting, an SDK's fresh client): each answer timed from its
  /// request's write, so the time a connection waits to be accepted counts.
  private func burst(
    _ env: NodeEnvironment, nginxRule: String, nginxPort: Int, credentialsPath: String, results: inout [String: Any]
  ) throws {
    let script = KiamProcess.packageRoot + "/scripts/bench/connect_burst.py"
    let connections = 200
    let rounds = settings.quick ? 2 : 10
    var rows: [[String]] = [["path", "kiam first answer p50 / max (ms)", "nginx first answer p50 / max (ms)", "max ratio"]]
    for path in ["dnat", "loopback"] {
      var maxima: [String: [Double]] = [:]
      var medians: [String: [Double]] = [:]
      for target in ["kiam", "nginx"] {
        progress("warm path: \(connections) new connections at once (\(path)): \(target)")
        let isKiam = target == "kiam"
        let output: String
        if path == "dnat" {
          if !isKiam { _ = try env.lab.run(onNode: "iptables -w 5 -t nat -I PREROUTING 1 \(nginxRule)") }
          defer { if !isKiam { _ = try? env.lab.run(onNode: "iptables -w 5 -t nat -D PREROUTING \(nginxRule)") } }
          output = try env.lab.run(
            inPod: "bench", "python3 \(script) 169.254.169.254 80 \(credentialsPath)app-bench \(connections) \(rounds)").output
        } else {
          output = try env.lab.run(
            onNode: "python3 \(script) 127.0.0.1 \(isKiam ? env.agentPort : nginxPort) \(credentialsPath)app-loop \(connections) \(rounds)"
          ).output
        }
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("BURST ") }),
          let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any],
          let burstRounds = object["rounds"] as? [[String: Any]]
        else { throw BenchError("the burst client printed no result: \(output)") }
        let errors = burstRounds.map { $0["errors"] as? Int ?? 0 }.reduce(0, +)
        if errors > 0 { progress("warning: \(errors) failed connections in the burst (\(target), \(path))") }
        maxima[target] = burstRounds.compactMap { $0["max_ms"] as? Double }
        medians[target] = burstRounds.compactMap { $0["p50_ms"] as? Double }
        results["burst-\(path)-\(target)"] = ["rounds": burstRounds, "errors": errors]
      }
      func cell(_ target: String) -> String {
        "\(Format.fixed(Sample(medians[target] ?? []).median, 2)) / \(Sample(maxima[target] ?? []).spread { Format.fixed($0, 1) })"
      }
      let ratio = Sample(maxima["kiam"] ?? []).median / Sample(maxima["nginx"] ?? []).median
      rows.append([path == "dnat" ? "DNAT (pod namespace)" : "loopback", cell("kiam"), cell("nginx"), Format.ratio(ratio)])
    }
    report.table("\(connections) new connections at once", rows, notes: [
      "\(rounds) bursts per target: \(connections) connections opened at once (scripts/bench/connect_burst.py), one GET of the "
        + "warm credentials on each as soon as it connects; each answer timed from its request's write, so waiting to be "
        + "accepted counts. Median over the bursts of each burst's median and slowest answer (min–max of the slowest).",
    ])
  }

  static func parse(_ output: String, cpuSeconds: Double) throws -> Run {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("BENCH ") }),
      let object = try JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any],
      let requests = object["requests"] as? Int, let duration = object["duration_us"] as? Int, requests > 0
    else { throw BenchError("wrk printed no result: \(output)") }
    func ms(_ key: String) -> Double { Double(object[key] as? Int ?? 0) / 1000 }
    return Run(
      requestsPerSecond: Double(requests) / (Double(duration) / 1e6), p50: ms("p50_us"), p99: ms("p99_us"),
      p999: ms("p999_us"), cpuMicrosPerRequest: cpuSeconds * 1e6 / Double(requests),
      errors: (object["socket_errors"] as? Int ?? 0) + (object["non2xx"] as? Int ?? 0))
  }

  static func json(_ run: Run) -> [String: Any] {
    [
      "rps": run.requestsPerSecond, "p50_ms": run.p50, "p99_ms": run.p99, "p999_ms": run.p999,
      "cpu_us_per_request": run.cpuMicrosPerRequest, "errors": run.errors,
      "run_queue_ms_per_s": run.runQueueMillisPerSecond, "preemptions_per_s": run.preemptionsPerSecond,
      "sleeps_per_s": run.sleepsPerSecond,
    ]
  }
}
