import Foundation

/// Everything of one node as it runs in a cluster, for end-to-end tests and benchmarks: the
/// network namespaces (``E2ELab``), moto (STS, and the node's own metadata service), the
/// Kubernetes API test server, and a kiam server and a kiam agent with its iptables rule, all
/// inside the node namespace. Root only.
public final class NodeEnvironment: @unchecked Sendable {
  public let lab: E2ELab
  public let sts: STSLab
  public let nodeMetadata: STSLab
  public let api: KubernetesAPITestServer
  public let directory: TemporaryDirectory
  public let pki: TestPKIFixture
  public let kubeconfig: String
  /// The IAM user (and server role) moto checks signatures against, when authentication is on.
  public let auth: STSLab.AuthSetup?
  public var server: KiamProcess?
  public var agent: KiamProcess?
  public let serverPort = 9610
  public let agentPort = 8181

  public static let stsEndpoint = "http://10.199.0.1:5000"

  /// Why this environment cannot be built here, or nil.
  public static var unavailableReason: String? {
    if let reason = NetworkNamespace.unavailableReason { return reason }
    if !STSLab.isAvailable { return "python3 with moto missing" }
    if (try? Shell.run("command -v curl && command -v aws"))?.status != 0 { return "curl or awscli missing" }
    return nil
  }

  /// - Parameters:
  ///   - authenticate: moto checks request signatures against an IAM user it creates.
  ///   - podInterfacePrefix: See ``E2ELab/init(podInterfacePrefix:)``.
  public init(authenticate: Bool = true, podInterfacePrefix: String? = nil) async throws {
    lab = try E2ELab(podInterfacePrefix: podInterfacePrefix)
    directory = try TemporaryDirectory(prefix: "kiam-node")
    do {
      sts = try await STSLab(namespace: lab.node, host: lab.nodeIP, port: 5000)
      nodeMetadata = try await STSLab(namespace: lab.node, host: "169.254.169.254", port: 80)
      auth = authenticate ? try await sts.enableAuthentication() : nil
      pki = try TestPKIFixture.make(in: directory.path)
      try Shell.run("chmod -R a+rX \(directory.path)")
      let ca = try TestCA(name: "kubernetes")
      api = try KubernetesAPITestServer(
        certificate: try ca.issue(commonName: "kube-apiserver", ipAddresses: [lab.hostSideIP]), tokens: ["node-token"])
      let apiPort = try await api.start(host: lab.hostSideIP)
      kubeconfig = try directory.write(
        "kubeconfig",
        """
        current-context: node
        contexts: [{name: node, context: {cluster: k, user: kiam-server}}]
        clusters: [{name: k, cluster: {server: "https://\(lab.hostSideIP):\(apiPort)", certificate-authority-data: \(Data(ca.pem.utf8).base64EncodedString())}}]
        users: [{name: kiam-server, user: {token: node-token}}]
        """)
    } catch {
      lab.tearDown()
      directory.remove()
      throw error
    }
  }

  /// Starts `kiam <arguments>` inside the node netns; with `hosts`, the process sees that file as
  /// /etc/hosts (a private mount namespace), as a pod's resolver would resolve cluster names.
  public func startInNode(_ arguments: [String], environment: [String: String] = [:], hosts: String? = nil) throws
    -> KiamProcess
  {
    let env = environment.map { "\($0.key)=\($0.value)" }
    let command =
      ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/nonexistent"] + env
      + [KiamProcess.binaryPath] + arguments
    guard let hosts else {
      return try KiamProcess(["netns", "exec", lab.node] + command, executable: "/usr/sbin/ip")
    }
    return try KiamProcess(
      [
        "netns", "exec", lab.node, "unshare", "-m", "sh", "-c",
        "mount --bind \(Shell.quote(hosts)) /etc/hosts && exec \(command.map(Shell.quote).joined(separator: " "))",
      ],
      executable: "/usr/sbin/ip")
  }

  /// Starts the server (assuming roles through `kiam_server` when authentication is on).
  public func startServer(_ extra: [String] = []) async throws {
    var arguments = [
      "server", "--bind=127.0.0.1:\(serverPort)", "--kubeconfig=\(kubeconfig)", "--sts-endpoint=\(Self.stsEndpoint)",
      "--role-base-arn=arn:aws:iam::123456789012:role/", "--json-log",
    ]
    if auth != nil { arguments.append("--assume-role-arn=kiam_server") }
    let keys =
      auth.map { ["AWS_ACCESS_KEY_ID": $0.AccessKeyId, "AWS_SECRET_ACCESS_KEY": $0.SecretAccessKey] }
      ?? ["AWS_ACCESS_KEY_ID": "AKIANODEENV", "AWS_SECRET_ACCESS_KEY": "unchecked"]
    let process = try startInNode(arguments + pki.server.arguments + extra, environment: keys)
    server = process
    guard try await waitForNode(port: serverPort) else {
      throw TestSupportError("server did not start: \(process.standardError)")
    }
  }

  /// Starts the agent with `--iptables` for the pods' interfaces, and waits for its rule.
  /// - Parameter host: `--host` (HOST_IP); the node's IPv4 address unless given, e.g. both of
  ///   the node's addresses for dual-stack pods.
  public func startAgent(_ extra: [String] = [], host: String? = nil) async throws {
    let process = try startInNode(
      [
        "agent", "--iptables", "--host-interface=\(lab.podInterfacePrefix)+", "--host=\(host ?? lab.nodeIP)",
        "--port=\(agentPort)",
        "--server-address=localhost:\(serverPort)", "--metadata-endpoint=http://169.254.169.254",
        "--allow-route-regexp=^/latest/meta-data/placement/",
      ] + pki.agent.arguments + extra)
    agent = process
    guard try await waitForNode(port: agentPort) else {
      throw TestSupportError("agent did not start: \(process.standardError)")
    }
    // The rules (one per address) follow the listener; give them a moment.
    let destinations = (host ?? lab.nodeIP).split(separator: ",").map {
      $0.contains(":") ? "[\($0)]:\(agentPort)" : "\($0):\(agentPort)"
    }
    for _ in 0..<50 {
      let rules = try lab.run(onNode: "iptables -t nat -S PREROUTING; ip6tables -t nat -S PREROUTING").output
      if destinations.allSatisfy({ rules.contains("--to-destination \($0)") }) { return }
      try await Task.sleep(for: .milliseconds(100))
    }
    throw TestSupportError("the agent's rules to \(destinations) did not appear in 5 s: \(process.standardError)")
  }

  /// Waits for something to listen on 127.0.0.1:`port` in the node netns.
  public func waitForNode(port: Int) async throws -> Bool {
    for _ in 0..<200 {
      if (try lab.run(onNode: "curl -s -o /dev/null --max-time 1 http://127.0.0.1:\(port)/ping || [ $? -ne 7 ]")).status
        == 0
      {
        return true
      }
      try await Task.sleep(for: .milliseconds(100))
    }
    return false
  }

  /// Stops every process and removes every namespace, link and file.
  public func tearDown() async {
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
}
