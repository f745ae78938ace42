import Foundation
import KiamTestSupport
import Testing

/// One pod floods the node's agent with connections through its own iptables rule (the way a pod
/// reaches 169.254.169.254); another pod is answered at once all the while. The attacker
/// reconnects the moment the agent closes a connection, so this also needs the kernel's share:
/// the agent's per-pod rate limit on new connections (``IPTablesRule``). Root only.
@Suite(.serialized) struct ConnectionFloodE2ETests {
  /// curl in the victim pod, a new connection per request: status and `time_total` of each.
  static let victimLoop = """
    for i in $(seq 1 200); do
      curl -s -o /dev/null --max-time 3 -w '%{http_code} %{time_total}\\n' \
        http://169.254.169.254/latest/meta-data/iam/security-credentials/app-victim
    done
    """

  @Test(
    .enabled(if: E2EEnvironment.unavailableReason == nil, "\(E2EEnvironment.unavailableReason ?? "")"),
    arguments: [
      ("5,000 silent connections", 5000, SocketFlood.Mode.silent),
      ("4,200 idle keep-alive connections", 4200, .keepAlive("GET /ping HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")),
      ("1,000 slow request heads", 1000, .slowHeaders),
    ])
  func floodFromOnePodLeavesTheOthersServed(_ name: String, _ count: Int, _ mode: SocketFlood.Mode) async throws {
    let env = try await E2EEnvironment()
    try await withCleanup({ await env.tearDown() }) {
      env.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
      try await env.startServer()
      try await env.startAgent(["--prometheus-listen-addr=127.0.0.1:9620"])
      let victimIP = try env.lab.addPod("victim")
      let attackerIP = try env.lab.addPod("attacker")
      env.api.upsertPod(TestPod(namespace: "apps", name: "victim", ip: victimIP, role: "app-victim"))
      env.api.upsertPod(TestPod(namespace: "apps", name: "attacker", ip: attackerIP, role: "app-attacker"))
      #expect(
        await eventually(timeout: .seconds(10)) {
          (try? env.lab.run(
            inPod: "victim",
            "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/iam/security-credentials/app-victim"
          ).output) == "200"
        })

      let flood = SocketFlood(
        host: "169.254.169.254", port: 80, namespace: env.lab.podNamespace("attacker"), count: count, mode: mode)
      flood.start()
      try await Task.sleep(for: .seconds(2))
      let output = try env.lab.run(inPod: "victim", Self.victimLoop).output
      let stats = flood.stats
      await flood.stop()

      let answers = output.split(separator: "\n").compactMap { line -> (Int, Double)? in
        let parts = line.split(separator: " ")
        guard parts.count == 2, let code = Int(parts[0]), let seconds = Double(parts[1]) else { return nil }
        return (code, seconds)
      }
      let ok = answers.filter { $0.0 == 200 }.count
      let times = answers.map(\.1).sorted()
      let p99 = times.isEmpty ? .infinity : times[min(times.count - 1, times.count * 99 / 100)]
      print(
        "flood \(name): victim \(ok)/200, p99 \(Int(p99 * 1000)) ms, slowest \(times.suffix(3)); attacker opened \(stats.opened), closed by the agent \(stats.closedByServer)"
      )
      #expect(stats.opened >= min(count, 500), "\(name): the flood opened only \(stats.opened) connections")
      #expect(ok == 200, "\(name): \(ok) of 200 answered")
      // Without the protections the victim's p99 was 433 ms to 2.8 s; with them it is 7 to 28 ms
      // on an idle machine, and once 177 ms on a loaded one. The bound tells the two apart and
      // leaves latency itself to `make bench`.
      #expect(p99 < 0.250, "\(name): p99 \(p99) s")
      #expect(env.agent?.isRunning == true)
      let metrics = try env.lab.run(onNode: "curl -s http://127.0.0.1:9620/metrics").output
      #expect(metrics.contains("kiam_agent_connections_"), "no connection counters after the flood")
    }
  }
}
