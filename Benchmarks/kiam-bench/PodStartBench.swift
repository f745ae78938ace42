import Foundation
import KiamTestSupport
import Synchronization

/// Pod start: pods appear in the Kubernetes API at 20 per second, each with its own role, and
/// boto3 in the pod's network namespace asks for credentials the moment its IP is set — before
/// the server's watch has delivered the pod. STS answers at once, or after 300 ms.
struct PodStartBench {
  let settings: BenchSettings
  let report: BenchReport

  func run() async throws {
    var rows: [[String]] = [[
      "STS latency", "pods", "served", "within 1 s", "min", "p50", "p90", "p99", "max (ms)", "SDK alone p50 / max (ms)",
    ]]
    var results: [String: Any] = [:]
    for latency in [0, 300] {
      progress("pod start: STS latency \(latency) ms, \(settings.podStartPods) pods at 20/s")
      let env = try await BenchCleanup.nodeEnvironment()
      let outcome: [Outcome]
      do {
        outcome = try await measure(env, latency: latency)
      } catch {
        await BenchCleanup.tearDown(env)
        throw error
      }
      await BenchCleanup.tearDown(env)
      let times = Sample(outcome.map(\.milliseconds))
      let sdk = Sample(outcome.compactMap(\.warmMilliseconds))
      let served = outcome.filter(\.ok).count
      let inTime = outcome.filter { $0.ok && $0.milliseconds < 1000 }.count
      rows.append([
        "\(latency) ms", "\(outcome.count)", "\(served)", "\(inTime) (\(Format.fixed(100 * Double(inTime) / Double(outcome.count))) %)",
        Format.fixed(times.min, 0), Format.fixed(times.median, 0), Format.fixed(times.percentile(90), 0),
        Format.fixed(times.percentile(99), 0), Format.fixed(times.max, 0),
        "\(Format.fixed(sdk.median, 0)) / \(Format.fixed(sdk.max, 0))",
      ])
      let failures = outcome.filter { !$0.ok }.map(\.detail)
      results["sts_\(latency)ms"] = [
        "ms": outcome.map(\.milliseconds), "sdk_alone_ms": sdk.values, "served": served, "within_1s": inTime, "failures": Array(failures.prefix(10)),
      ]
      if !failures.isEmpty { progress("pod start failures: \(failures.prefix(5))") }
    }
    report.table(
      "Pod start: time to first credentials (boto3, 20 new pods per second)", rows,
      notes: [
        "Each pod has its own role, so every pod needs its own AssumeRole (the worst case). The clock starts when the pod's "
          + "IP is written to the Kubernetes API test server (which emits the watch event) and the waiting boto3 process is "
          + "released at the same moment; it stops when `Session().get_credentials()` returns (IMDSv2 token, role list, "
          + "credentials; botocore's defaults: 1 s timeout, one attempt). Python start-up is excluded: the clients are "
          + "started, have imported boto3 and made their sessions beforehand. \"SDK alone\" is a second session's "
          + "get_credentials() right after, when the agent already knows the pod: the SDK's own share of the time."
      ])
    report.record("pod_start", results)
  }

  struct Outcome {
    var milliseconds: Double
    /// The same calls once the agent knows the pod: what the SDK itself costs.
    var warmMilliseconds: Double?
    var ok: Bool
    var detail: String
  }

  private func measure(_ env: NodeEnvironment, latency: Int) async throws -> [Outcome] {
    env.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
    try await env.startServer()
    try await env.startAgent()
    try await env.sts.setFaults(["latency_ms": "\(latency)"])
    let count = settings.podStartPods
    var addresses: [String] = []
    for index in 0..<count { addresses.append(try env.lab.addPod("s\(index)")) }
    let script = KiamProcess.packageRoot + "/scripts/bench/podstart_client.py"
    let clients = try (0..<count).map { index in try WaitingClient("exec " + env.lab.inPod("s\(index)", "exec python3 \(script)")) }
    defer { for client in clients { client.stop() } }
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(120)
    while clients.contains(where: { !$0.output.contains("ready") }) {
      guard clock.now < deadline else { throw BenchError("boto3 clients did not start") }
      try await Task.sleep(for: .milliseconds(100))
    }
    let start = clock.now
    for (index, client) in clients.enumerated() {
      try await Task.sleep(until: start + .milliseconds(50 * index))
      env.api.upsertPod(TestPod(namespace: "apps", name: "s\(index)", ip: addresses[index], role: "start-\(latency)-\(index)"))
      client.release()
    }
    let end = clock.now + .seconds(30)
    while clients.contains(where: { $0.result == nil }) && clock.now < end {
      try await Task.sleep(for: .milliseconds(100))
    }
    return clients.map { client in
      guard let result = client.result else {
        return Outcome(milliseconds: .infinity, warmMilliseconds: nil, ok: false, detail: "no answer: \(client.output)")
      }
      let ok = result["ok"] as? Bool ?? false
      return Outcome(
        milliseconds: result["ms"] as? Double ?? .infinity, warmMilliseconds: result["warm_ms"] as? Double, ok: ok,
        detail: ok ? "" : "\(result["error"] as? String ?? "?")")
    }
  }
}

/// A client process that waits for one line on stdin, then does its work and prints JSON.
final class WaitingClient: @unchecked Sendable {
  private let process = Process()
  private let input = Pipe()
  private final class Buffer: Sendable {
    let data = Mutex<Data>(Data())
  }
  private let buffer = Buffer()

  init(_ command: String) throws {
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let out = Pipe()
    process.standardInput = input
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    let buffer = self.buffer
    out.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      buffer.data.withLock { $0.append(data) }
    }
    try process.run()
  }

  var output: String { buffer.data.withLock { String(decoding: $0, as: UTF8.self) } }

  /// The JSON line printed after release, if any.
  var result: [String: Any]? {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("{") }) else { return nil }
    return try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
  }

  func release() { input.fileHandleForWriting.write(Data("go\n".utf8)) }

  func stop() {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }
}
