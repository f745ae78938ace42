import Foundation
import KiamShared
import KiamTestSupport
import Testing

/// A kiam server (static manifests) and a kiam agent as real processes on loopback, with moto as
/// STS and as the upstream metadata service.
final class AgentHarness: @unchecked Sendable {
  let lab: STSLab
  let directory: TemporaryDirectory
  let pki: TestPKIFixture
  let serverPort: Int
  let agentPort: Int
  let metricsPort: Int
  var server: KiamProcess?
  var agent: KiamProcess?

  static let manifests = """
    apiVersion: v1
    kind: Namespace
    metadata: {name: apps, annotations: {iam.amazonaws.com/permitted: "arn:aws:iam::123456789012:role/app-.*"}}
    ---
    apiVersion: v1
    kind: Namespace
    metadata: {name: locked}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: web, namespace: apps, uid: uid-web, annotations: {iam.amazonaws.com/role: app-web}}
    status: {phase: Running, podIP: 10.0.0.1}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: plain, namespace: apps, uid: uid-plain}
    status: {phase: Running, podIP: 10.0.0.2}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: db, namespace: locked, uid: uid-db, annotations: {iam.amazonaws.com/role: app-db}}
    status: {phase: Running, podIP: 10.0.0.3}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: local, namespace: apps, uid: uid-local, annotations: {iam.amazonaws.com/role: app-local}}
    status: {phase: Running, podIP: 127.0.0.1}
    """

  init() async throws {
    lab = try await STSLab()
    directory = try TemporaryDirectory(prefix: "kiam-agent")
    pki = try TestPKIFixture.make(in: directory.path)
    try directory.write("manifests/pods.yaml", Self.manifests)
    serverPort = try FreePort.next()
    agentPort = try FreePort.next()
    metricsPort = try FreePort.next()
  }

  func startServer(_ extra: [String] = [], bind: String? = nil) async throws {
    let process = try KiamProcess(
      [
        "server", "--bind=\(bind ?? "127.0.0.1:\(serverPort)")", "--role-base-arn=arn:aws:iam::123456789012:role/",
        "--pod-manifests=\(directory.path)/manifests", "--sts-endpoint=\(lab.endpoint)", "--pod-wait-timeout=500ms",
      ]
        + pki.server.arguments + extra,
      environment: [
        "AWS_ACCESS_KEY_ID": "AKIAAGENTTEST", "AWS_SECRET_ACCESS_KEY": "secret", "HOME": directory.path,
        "PATH": "/usr/bin:/bin",
      ])
    server = process
    if bind == nil { try await FreePort.waitUntilListening(serverPort) }
  }

  func startAgent(
    _ extra: [String] = [], allowRoutes: String = "^/latest/meta-data/placement/", serverAddress: String? = nil
  ) async throws {
    agent = try KiamProcess(
      [
        "agent", "--host=127.0.0.1", "--port=\(agentPort)",
        "--server-address=\(serverAddress ?? "localhost:\(serverPort)")",
        "--metadata-endpoint=\(lab.endpoint)", "--prometheus-listen-addr=127.0.0.1:\(metricsPort)", "--allow-ip-query",
        "--allow-route-regexp=\(allowRoutes)",
      ] + pki.agent.arguments + extra)
    try await FreePort.waitUntilListening(agentPort)
  }

  /// `scripts/test/botocore_client.py <arguments>` against the agent (the pod behind 127.0.0.1):
  /// its JSON answer.
  func botocore(_ arguments: [String]) throws -> [String: Any] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", KiamProcess.packageRoot + "/scripts/test/botocore_client.py"] + arguments
    var environment = ProcessInfo.processInfo.environment
    environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = "http://127.0.0.1:\(agentPort)"
    environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null"
    environment["AWS_CONFIG_FILE"] = "/dev/null"
    for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"] {
      environment[key] = nil
    }
    process.environment = environment
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitPolling()
    return (try JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
  }

  func get(_ path: String, ip: String? = nil, method: String = "GET", headers: [String: String] = [:]) throws
    -> HTTPExchange
  {
    var target = path
    if let ip { target += (path.contains("?") ? "&" : "?") + "ip=\(ip)" }
    return try HTTPExchange.send(method, port: agentPort, path: target, headers: headers)
  }

  /// 127.0.0.1 now belongs to another pod (`local2`, role `app-other`); waits until the server
  /// has re-read its manifests (it does within a second).
  func moveLocalPodToAnotherPod() async throws {
    let moved = Self.manifests.replacingOccurrences(
      of: "name: local, namespace: apps, uid: uid-local, annotations: {iam.amazonaws.com/role: app-local}",
      with: "name: local2, namespace: apps, uid: uid-local2, annotations: {iam.amazonaws.com/role: app-other}")
    #expect(moved != Self.manifests)
    try directory.write("manifests/pods.yaml", moved)
    try await Task.sleep(for: .milliseconds(2500))
  }

  func stop() async {
    agent?.signal(SIGTERM)
    server?.signal(SIGTERM)
    _ = await agent?.wait(timeout: .seconds(10))
    _ = await server?.wait(timeout: .seconds(10))
    lab.stop()
    directory.remove()
  }
}
