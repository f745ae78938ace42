import Foundation

/// scripts/test/kiam_grpc_client.py: a grpcio client generated from our proto, the way a
/// third-party (Go kiam) agent's calls look to a server. One JSON object per call.
public enum PythonGRPCClient {
  /// Whether python3 with grpcio and grpcio-tools is here; prints why not once.
  public static let isAvailable = Python.canImport(
    "grpc, grpc_tools",
    otherwise:
      "python3 grpcio/grpcio-tools missing (make test installs them into .build/venv and puts it on PATH); skipping Python client tests"
  )

  /// Runs the client: `ADDRESS CA CERT KEY SERVER_NAME CALL...` (see the script).
  public static func run(_ arguments: [String]) throws -> [[String: Any]] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", KiamProcess.packageRoot + "/scripts/test/kiam_grpc_client.py"] + arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitPolling()
    return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
      try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
  }

  /// Runs calls as the agent of `pki` against a server on 127.0.0.1:`port`.
  /// - Parameter goAgent: Make them as Go kiam's agent does (retries in a 5 s handler context).
  public static func call(port: Int, pki: TestPKIFixture, goAgent: Bool = false, _ calls: [String]) throws -> [[String:
    Any]]
  {
    try run(
      (goAgent ? ["--go-agent"] : []) + [
        "127.0.0.1:\(port)", pki.agent.ca, pki.agent.certificate, pki.agent.key, "kiam-server",
      ]
        + calls)
  }
}
