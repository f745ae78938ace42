import Foundation
import KiamTestSupport
import Testing

/// Everything of one end-to-end run: the namespaces, moto (STS with signature checks, and the
/// node's own metadata service), the Kubernetes API test server, a kiam server and a kiam agent
/// with its iptables rule, all as they run on a node.
final class E2EEnvironment: @unchecked Sendable {
  let lab: E2ELab
  let sts: STSLab
  let nodeMetadata: STSLab
  let api: KubernetesAPITestServer
  let directory: TemporaryDirectory
  let pki: TestPKIFixture
  let kubeconfig: String
  let auth: STSLab.AuthSetup
  var server: KiamProcess?
  var agent: KiamProcess?
  let serverPort = 9610
  let agentPort = 8181

  static let stsEndpoint = "http://10.199.0.1:5000"

  /// Why end-to-end tests cannot run here, or nil.
  static var unavailableReason: String? {
    if let reason = NetworkNamespace.unavailableReason { return reason }
    if !STSLab.isAvailable { return "python3 with moto missing" }
    if (try? Shell.run("command -v curl && command -v aws"))?.status != 0 { return "curl or awscli missing" }
    return nil
  }

  static func skip(_ test: String) -> Bool {
    if let reason = unavailableReason {
      print("skipping end-to-end test \(test): \(reason); runs as root in CI (make e2e)")
      return true
    }
    return false
  }

  init() async throws {
    lab = try E2ELab()
    directory = try TemporaryDirectory(prefix: "kiam-e2e")
    do {
      sts = try await STSLab(namespace: lab.node, host: lab.nodeIP, port: 5000)
      nodeMetadata = try await STSLab(namespace: lab.node, host: "169.254.169.254", port: 80)
      auth = try await sts.enableAuthentication()
      pki = try TestPKIFixture.make(in: directory.path)
      try Shell.run("chmod -R a+rX \(directory.path)")
      let ca = try TestCA(name: "kubernetes")
      api = try KubernetesAPITestServer(
        certificate: try ca.issue(commonName: "kube-apiserver", ipAddresses: [lab.hostSideIP]), tokens: ["e2e-token"])
      let apiPort = try await api.start(host: lab.hostSideIP)
      kubeconfig = try directory.write(
        "kubeconfig",
        """
        current-context: e2e
        contexts: [{name: e2e, context: {cluster: k, user: kiam-server}}]
        clusters: [{name: k, cluster: {server: "https://\(lab.hostSideIP):\(apiPort)", certificate-authority-data: \(Data(ca.pem.utf8).base64EncodedString())}}]
        users: [{name: kiam-server, user: {token: e2e-token}}]
        """)
    } catch {
      lab.tearDown()
      directory.remove()
      throw error
    }
  }

  /// Starts `kiam <arguments>` inside the node netns.
  func startInNode(_ arguments: [String], environment: [String: String] = [:]) throws -> KiamProcess {
    let env = environment.map { "\($0.key)=\($0.value)" }
    return try KiamProcess(
      ["netns", "exec", lab.node, "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent"]
        + env + [KiamProcess.binaryPath] + arguments,
      executable: "/usr/sbin/ip")
  }

  func startServer() async throws {
    server = try startInNode(
      ["server", "--bind=127.0.0.1:\(serverPort)", "--kubeconfig=\(kubeconfig)", "--sts-endpoint=\(Self.stsEndpoint)",
       "--role-base-arn=arn:aws:iam::123456789012:role/", "--assume-role-arn=kiam_server", "--json-log"]
        + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": auth.AccessKeyId, "AWS_SECRET_ACCESS_KEY": auth.SecretAccessKey])
    let ready = try await waitForNode(port: serverPort)
    #expect(ready, "server did not start: \(server?.standardError ?? "")")
  }

  func startAgent(_ extra: [String] = []) async throws {
    agent = try startInNode(
      ["agent", "--iptables", "--host-interface=\(lab.podInterfacePrefix)+", "--host=\(lab.nodeIP)", "--port=\(agentPort)",
       "--server-address=localhost:\(serverPort)", "--metadata-endpoint=http://169.254.169.254",
       "--allow-route-regexp=^/latest/meta-data/placement/"] + pki.agent.arguments + extra)
    let ready = try await waitForNode(port: agentPort)
    #expect(ready, "agent did not start: \(agent?.standardError ?? "")")
    // The rule is in place once the listener is up; give it a moment.
    for _ in 0..<50 {
      if (try lab.run(onNode: "iptables -t nat -S PREROUTING")).output.contains("--to-destination \(lab.nodeIP):\(agentPort)") { return }
      try await Task.sleep(for: .milliseconds(100))
    }
  }

  /// Waits for something to listen on 127.0.0.1:`port` in the node netns.
  func waitForNode(port: Int) async throws -> Bool {
    for _ in 0..<200 {
      if (try lab.run(onNode: "curl -s -o /dev/null --max-time 1 http://127.0.0.1:\(port)/ || [ $? -ne 7 ]")).status == 0 { return true }
      try await Task.sleep(for: .milliseconds(100))
    }
    return false
  }

  func tearDown() async {
    agent?.signal(SIGTERM)
    server?.signal(SIGTERM)
    _ = await agent?.wait(timeout: .seconds(10))
    _ = await server?.wait(timeout: .seconds(10))
    sts.stop()
    nodeMetadata.stop()
    await api.stop()
    lab.tearDown()
    directory.remove()
  }

  // MARK: Clients inside pods

  /// boto3 `Session().get_credentials()` in the pod, no endpoint override.
  func boto3(_ pod: String) throws -> [String: Any] {
    let output = try lab.run(inPod: pod, "python3 \(KiamProcess.packageRoot)/scripts/test/botocore_client.py v2").output
    return (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]) ?? ["raw": output]
  }

  /// `aws sts get-caller-identity` in the pod, against moto, with credentials from the metadata API.
  func callerIdentity(_ pod: String) throws -> String? {
    let output = try lab.run(
      inPod: pod, "aws sts get-caller-identity --endpoint-url \(Self.stsEndpoint) --output json 2>&1").output
    return (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["Arn"] as? String
  }

  /// The raw IMDSv2 flow with curl: token, role list, credentials. Returns (status, body) of each.
  func curlFlow(_ pod: String, role: String? = nil) throws -> (token: String, list: (Int, String), credentials: (Int, String)) {
    let base = "http://169.254.169.254/latest"
    let script = """
      T=$(curl -s --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \(base)/api/token)
      echo "TOKEN=$T"
      curl -s --max-time 2 -w '\\nSTATUS=%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" \(base)/meta-data/iam/security-credentials/
      R=\(role.map { "'\($0)'" } ?? "$(curl -s --max-time 2 -H \"X-aws-ec2-metadata-token: $T\" \(base)/meta-data/iam/security-credentials/)")
      echo "---"
      curl -s --max-time 2 -w '\\nSTATUS=%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" "\(base)/meta-data/iam/security-credentials/$R"
      """
    let output = try lab.run(inPod: pod, script).output
    let token = output.split(separator: "\n").first { $0.hasPrefix("TOKEN=") }.map { String($0.dropFirst(6)) } ?? ""
    let parts = output.components(separatedBy: "---\n")
    func parse(_ text: String) -> (Int, String) {
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      let status = lines.last { $0.hasPrefix("STATUS=") }.flatMap { Int($0.dropFirst(7)) } ?? 0
      let body = lines.filter { !$0.hasPrefix("STATUS=") && !$0.hasPrefix("TOKEN=") }.joined(separator: "\n")
        .trimmingCharacters(in: .newlines)
      return (status, body)
    }
    return (token, parse(parts.first ?? ""), parse(parts.count > 1 ? parts[1] : ""))
  }
}
