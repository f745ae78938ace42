import KiamShared
import KiamTestSupport
import Testing

@testable import kiam

/// The argument lists real kiam deployments pass, held verbatim: the Cluster API cross-account
/// guide's server.yaml, agent.yaml and both health probes, plus kiam's own deploy/ manifests and
/// Helm chart flags. They must parse unchanged.
@Suite struct SeedArgumentsTests {
  static let tlsPaths = [
    "/etc/kiam/tls/server.pem", "/etc/kiam/tls/server-key.pem", "/etc/kiam/tls/ca.pem",
    "/etc/kiam/tls/agent.pem", "/etc/kiam/tls/agent-key.pem",
  ]

  // server.yaml, container args (command: /kiam).
  static let serverArgs = [
    "server",
    "--json-log",
    "--level=warn",
    "--bind=0.0.0.0:443",
    "--cert=/etc/kiam/tls/server.pem",
    "--key=/etc/kiam/tls/server-key.pem",
    "--ca=/etc/kiam/tls/ca.pem",
    "--role-base-arn-autodetect",
    "--assume-role-arn=arn:aws:iam::<SOURCE_AWS_ACCOUNT>:role/kiam_server",
    "--sync=1m",
    "--prometheus-listen-addr=0.0.0.0:9620",
    "--prometheus-sync-interval=5s",
  ]

  // server.yaml livenessProbe and readinessProbe exec commands (identical lists), minus /kiam.
  static let livenessProbeArgs = [
    "health",
    "--cert=/etc/kiam/tls/server.pem",
    "--key=/etc/kiam/tls/server-key.pem",
    "--ca=/etc/kiam/tls/ca.pem",
    "--server-address=127.0.0.1:443",
    "--gateway-timeout-creation=1s",
    "--timeout=5s",
  ]
  static let readinessProbeArgs = [
    "health",
    "--cert=/etc/kiam/tls/server.pem",
    "--key=/etc/kiam/tls/server-key.pem",
    "--ca=/etc/kiam/tls/ca.pem",
    "--server-address=127.0.0.1:443",
    "--gateway-timeout-creation=1s",
    "--timeout=5s",
  ]

  // agent.yaml container args, with HOST_IP from status.podIP.
  static let agentArgs = [
    "agent",
    "--iptables",
    "--host-interface=cali+",
    "--json-log",
    "--port=8181",
    "--cert=/etc/kiam/tls/agent.pem",
    "--key=/etc/kiam/tls/agent-key.pem",
    "--ca=/etc/kiam/tls/ca.pem",
    "--server-address=kiam-server:443",
    "--prometheus-listen-addr=0.0.0.0:9620",
    "--prometheus-sync-interval=5s",
    "--gateway-timeout-creation=1s",
  ]

  @Test func serverYAMLArgumentsParse() throws {
    let root = try fileRoot(with: Self.tlsPaths)
    defer { root.remove() }
    let (config, warnings) = try parseServer(Self.serverArgs, context: .init(fileRoot: root.path))
    #expect(config.bind == HostPort(host: "0.0.0.0", port: 443))
    #expect(
      config.tls
        == TLSFiles(
          certificatePath: "/etc/kiam/tls/server.pem", keyPath: "/etc/kiam/tls/server-key.pem",
          caPath: "/etc/kiam/tls/ca.pem"))
    #expect(config.roleBaseARNAutodetect)
    #expect(config.roleBaseARN == nil)
    #expect(config.assumeRoleARN == "arn:aws:iam::<SOURCE_AWS_ACCOUNT>:role/kiam_server")
    #expect(config.sync == .seconds(60))
    #expect(config.prometheusListenAddress == HostPort(host: "0.0.0.0", port: 9620))
    #expect(warnings.contains { $0.contains("--prometheus-sync-interval is deprecated") })
    guard let box = try parse(Self.serverArgs) as? ServerBox else {
      Issue.record("not a server")
      return
    }
    #expect(box.command.log.jsonLog)
    #expect(try box.command.log.logLevel() == .warning)
  }

  @Test(arguments: [livenessProbeArgs, readinessProbeArgs])
  func healthProbeArgumentsParse(_ arguments: [String]) throws {
    let root = try fileRoot(with: Self.tlsPaths)
    defer { root.remove() }
    let (config, warnings) = try parseHealth(arguments, context: .init(fileRoot: root.path))
    #expect(config.serverAddress == HostPort(host: "127.0.0.1", port: 443))
    #expect(config.connectTimeout == .seconds(1))
    #expect(config.timeout == .seconds(5))
    #expect(config.tls.certificatePath == "/etc/kiam/tls/server.pem")
    #expect(warnings.isEmpty)
  }

  @Test func agentYAMLArgumentsParse() throws {
    let root = try fileRoot(with: Self.tlsPaths)
    defer { root.remove() }
    let (config, warnings) = try parseAgent(
      Self.agentArgs, context: .init(environment: ["HOST_IP": "10.0.0.5"], fileRoot: root.path))
    #expect(config.iptables)
    #expect(config.iptablesRemove)
    #expect(config.hostInterface == "cali+")
    #expect(config.port == 8181)
    #expect(config.host == "10.0.0.5")
    #expect(config.serverAddress == HostPort(host: "kiam-server", port: 443))
    #expect(config.prometheusListenAddress == HostPort(host: "0.0.0.0", port: 9620))
    #expect(config.tls.caPath == "/etc/kiam/tls/ca.pem")
    #expect(warnings.count == 1)
  }

  // kiam's deploy/server.daemonset.yaml and the Helm chart's extra flags.
  @Test func kiamDeployAndHelmArgumentsParse() throws {
    let root = try fileRoot(with: Self.tlsPaths)
    defer { root.remove() }
    let server = [
      "server", "--json-log", "--level=warn", "--bind=0.0.0.0:443", "--cert=/etc/kiam/tls/server.pem",
      "--key=/etc/kiam/tls/server-key.pem", "--ca=/etc/kiam/tls/ca.pem", "--role-base-arn-autodetect", "--sync=1m",
      "--prometheus-listen-addr=0.0.0.0:9620", "--prometheus-sync-interval=5s",
    ]
    _ = try parseServer(server, context: .init(fileRoot: root.path))
    let helmAgent = [
      "agent", "--no-iptables-remove", "--host-interface=cali+", "--json-log", "--level=info", "--port=8181",
      "--cert=/etc/kiam/tls/agent.pem", "--key=/etc/kiam/tls/agent-key.pem", "--ca=/etc/kiam/tls/ca.pem",
      "--server-address=kiam-server:443", "--gateway-timeout-creation=1s",
      "--grpc-keepalive-time-duration=10s", "--grpc-keepalive-timeout-duration=2s",
    ]
    let (agent, _) = try parseAgent(
      helmAgent, context: .init(environment: ["HOST_IP": "10.1.2.3"], fileRoot: root.path))
    #expect(agent.iptablesRemove == false)
    let helmHealth = [
      "health", "--cert=/etc/kiam/tls/server.pem", "--key=/etc/kiam/tls/server-key.pem",
      "--ca=/etc/kiam/tls/ca.pem", "--server-address=127.0.0.1:443", "--gateway-timeout-creation=1s",
      "--timeout=5s", "--server-address-refresh=2s",
    ]
    let (_, warnings) = try parseHealth(helmHealth, context: .init(fileRoot: root.path))
    #expect(warnings.contains { $0.contains("--server-address-refresh is deprecated") })
  }
}
