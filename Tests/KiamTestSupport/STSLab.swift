import Foundation

/// moto's STS/IAM/instance-metadata server with fault injection (scripts/test/sts_lab.py), run
/// as a child process on loopback for the duration of a test.
public final class STSLab: Sendable {
  public let port: Int
  public let host: String
  /// Whether the lab serves HTTPS.
  public let tls: Bool
  private let process: Process

  /// Whether python3 with moto is available; prints why not when it isn't.
  public static let isAvailable = Python.canImport(
    "moto.moto_server.werkzeug_app, boto3",
    otherwise:
      "python3 with moto[server] and boto3 is missing (make test installs them into .build/venv and puts it on PATH); skipping STS tests"
  )

  public var endpoint: String { "\(tls ? "https" : "http")://\(urlHost):\(port)" }
  /// ``host`` as a URL writes it (IPv6 literals in brackets).
  var urlHost: String { host.contains(":") ? "[\(host)]" : host }

  /// Starts the lab on 127.0.0.1, or inside network namespace `namespace` on `host:port`.
  /// - Parameter tls: Certificate and key files to serve HTTPS with.
  public init(
    namespace: String? = nil, host: String = "127.0.0.1", port fixedPort: Int? = nil,
    tls: (certificate: String, key: String)? = nil
  ) async throws {
    port = try fixedPort ?? FreePort.next()
    self.host = host
    self.tls = tls != nil
    process = Process()
    var lab = [KiamProcess.packageRoot + "/scripts/test/sts_lab.py", "--host", host, "--port", String(port)]
    if let tls { lab += ["--tls-cert", tls.certificate, "--tls-key", tls.key] }
    if let namespace {
      process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
      process.arguments = ["netns", "exec", namespace, "python3"] + lab
    } else {
      process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      process.arguments = ["python3"] + lab
    }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    if namespace == nil {
      try await FreePort.waitUntilListening(port, timeout: .seconds(30))
    } else {
      let clock = ContinuousClock()
      let deadline = clock.now + .seconds(30)
      while clock.now < deadline {
        if (try? Shell.run("ip netns exec \(namespace!) sh -c 'exec 3<>/dev/tcp/\(host)/\(port)' 2>/dev/null"))?.status
          == 0
        {
          break
        }
        if (try? Shell.run("ip netns exec \(namespace!) curl -s -o /dev/null http://\(urlHost):\(port)/_lab/stats"))?
          .status == 0
        {
          break
        }
        try await Task.sleep(for: .milliseconds(100))
      }
    }
  }

  /// Stops the lab (Foundation's `waitUntilExit` spins on Linux off the main thread: poll instead).
  public func stop() {
    guard process.isRunning else { return }
    kill(process.processIdentifier, SIGTERM)
    for _ in 0..<200 where process.isRunning { usleep(10_000) }
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }

  deinit { stop() }

  /// Sets AssumeRole faults, e.g. `["latency_ms": "300", "throttle_rate": "1"]`.
  public func setFaults(_ faults: [String: String]) async throws {
    let query = faults.map {
      "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? $0.value)"
    }
    .joined(separator: "&")
    _ = try await post("/_lab/faults?\(query)")
  }

  public func clearFaults() async throws {
    try await setFaults([
      "latency_ms": "0", "throttle_rate": "0", "error_rate": "0", "reset_rate": "0", "deny_role": "",
      "iam_info_status": "200",
      "throttle_next": "0",
    ])
  }

  public struct Stats: Decodable, Sendable {
    public let assume_role: [String: Int]
    public let max_concurrent: Int
    public let throttled: Int
    public let errors: Int
    public let resets: Int
    public let denied: Int
    public let requests: Int
    public let web_identity: Int
    public let caller_identity: Int

    public func calls(_ role: String) -> Int { assume_role[role] ?? 0 }
  }

  public func stats() async throws -> Stats {
    let (status, body) = try await HTTPGet.fetch(endpoint + "/_lab/stats")
    guard status == 200 else { throw TestSupportError("stats: \(status)") }
    return try JSONDecoder().decode(Stats.self, from: Data(body.utf8))
  }

  public func resetCounters() async throws { _ = try await post("/_lab/reset") }

  public struct AuthSetup: Decodable, Sendable {
    public let AccessKeyId: String
    public let SecretAccessKey: String
    public let UserArn: String
    public let ServerRoleArn: String
  }

  /// Creates user `kiam-node` and role `kiam_server` in moto, then turns on moto's signature and
  /// IAM policy checks; returns the user's keys.
  public func enableAuthentication() async throws -> AuthSetup {
    try JSONDecoder().decode(AuthSetup.self, from: Data(try await post("/_lab/setup-auth").utf8))
  }

  @discardableResult
  private func post(_ path: String) async throws -> String {
    var request = URLRequest(url: URL(string: endpoint + path)!)
    request.httpMethod = "POST"
    request.timeoutInterval = 30
    let (data, response) = try await URLSession.shared.data(for: request)
    guard (response as? HTTPURLResponse)?.statusCode == 200 else {
      throw TestSupportError("\(path): \(String(decoding: data, as: UTF8.self))")
    }
    return String(decoding: data, as: UTF8.self)
  }
}

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif
