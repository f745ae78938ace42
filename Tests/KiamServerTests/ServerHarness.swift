import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import KiamShared
import KiamTestSupport
import Logging
import Synchronization

@testable import KiamServer

/// Credentials from a closure, counting calls (a test double for the STS provider).
final class StubCredentials: CredentialsProvider {
  let calls = Mutex<[RoleIdentity]>([])
  let answer: @Sendable (RoleIdentity) throws -> AWSCredentials

  init(_ answer: @escaping @Sendable (RoleIdentity) throws -> AWSCredentials = StubCredentials.fixed) {
    self.answer = answer
  }

  static func fixed(_ identity: RoleIdentity) -> AWSCredentials {
    AWSCredentials(
      accessKeyID: "ASIA" + String(identity.role.name.uppercased().prefix(8)),
      secretAccessKey: "secret-\(identity.role.name)",
      sessionToken: "token-\(identity.role.arn)", expiration: 1_900_000_000, lastUpdated: 1_899_996_400)
  }

  func credentials(for identity: RoleIdentity) async throws -> AWSCredentials {
    calls.withLock { $0.append(identity) }
    return try answer(identity)
  }
}

/// A `ServerApplication` running in-process against the Kubernetes API test server, plus a kiam
/// client over mutual TLS.
struct ServerHarness {
  let api: APIFixture
  let pki: TestPKIFixture
  let port: Int
  let kubeconfig: String

  static func make(tokens: Set<String> = ["token-1"]) async throws -> ServerHarness {
    let api = try await APIFixture.start(tokens: tokens)
    let pki = try TestPKIFixture.make(in: api.directory.path)
    let kubeconfig = try api.directory.write(
      "kubeconfig",
      """
      apiVersion: v1
      kind: Config
      current-context: test
      clusters: [{name: c, cluster: {server: "https://127.0.0.1:\(api.port)", certificate-authority-data: \(Data(api.ca.pem.utf8).base64EncodedString())}}]
      users: [{name: u, user: {token: token-1}}]
      contexts: [{name: test, context: {cluster: c, user: u}}]
      """)
    return ServerHarness(api: api, pki: pki, port: try FreePort.next(), kubeconfig: kubeconfig)
  }

  func configuration(_ configure: (inout ServerConfiguration) -> Void = { _ in }) -> ServerConfiguration {
    var config = ServerConfiguration(
      tls: TLSFiles(certificatePath: pki.server.certificate, keyPath: pki.server.key, caPath: pki.server.ca))
    config.bind = HostPort(host: "127.0.0.1", port: port)
    config.kubeconfig = kubeconfig
    config.roleBaseARN = "arn:aws:iam::123456789012:role/"
    config.podWaitTimeout = .milliseconds(300)
    configure(&config)
    return config
  }

  /// Runs the server while `body` gets a kiam client.
  /// - Parameter credentials: A test double, or nil for the real STS-backed cache.
  func run<T: Sendable>(
    credentials: (any CredentialsProvider)? = StubCredentials(), metrics: KiamMetrics = KiamMetrics(),
    configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: @Sendable (Kiam_KiamService.Client<HTTP2ClientTransport.Posix>) async throws -> T
  ) async throws -> T {
    let application = ServerApplication(
      configuration: configuration(configure), logger: Logger(label: "server"), metrics: metrics,
      credentials: credentials)
    let pki = self.pki
    let port = self.port
    return try await withThrowingTaskGroup(of: T?.self) { group in
      group.addTask {
        try await application.run()
        return nil
      }
      try await FreePort.waitUntilListening(port)
      let store = try await TLSMaterialStore(
        files: TLSFiles(certificatePath: pki.agent.certificate, keyPath: pki.agent.key, caPath: pki.agent.ca),
        role: .client, metrics: nil, logger: Logger(label: "client"))
      let transport = try KiamTransports.client(
        server: HostPort(host: "localhost", port: port), store: store, settings: .defaults)
      let result = try await withGRPCClient(transport: transport) { client in
        try await body(Kiam_KiamService.Client(wrapping: client))
      }
      group.cancelAll()
      return result
    }
  }

  func stop() async { await api.stop() }
}

extension Kiam_KiamService.Client where Transport == HTTP2ClientTransport.Posix {
  static var options: CallOptions {
    var options = CallOptions.defaults
    options.timeout = .seconds(5)
    return options
  }

  func role(_ ip: String, metadata: Metadata = [:]) async throws -> String {
    try await getPodRole(Kiam_GetPodRoleRequest.with { $0.ip = ip }, metadata: metadata, options: Self.options).name
  }

  func creds(_ ip: String, _ role: String, metadata: Metadata = [:]) async throws -> Kiam_Credentials {
    try await getPodCredentials(
      Kiam_GetPodCredentialsRequest.with {
        $0.ip = ip
        $0.role = role
      }, metadata: metadata, options: Self.options)
  }

  func health() async throws -> String {
    try await getHealth(Kiam_GetHealthRequest(), options: Self.options).message
  }
}

/// The status message of a failed call, or "ok".
func rpcMessage(_ body: () async throws -> Void) async -> (RPCError.Code?, String) {
  do {
    try await body()
    return (nil, "ok")
  } catch let error as RPCError {
    return (error.code, error.message)
  } catch {
    return (nil, "\(error)")
  }
}
