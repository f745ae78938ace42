import Foundation
import KiamShared
import Yams

extension KubernetesConfiguration {
  private struct Kubeconfig: Decodable {
    var currentContext: String?
    var clusters: [Named<Cluster>]?
    var users: [Named<User>]?
    var contexts: [Named<Context>]?

    enum CodingKeys: String, CodingKey {
      case currentContext = "current-context"
      case clusters, users, contexts
    }

    struct Named<T: Decodable>: Decodable {
      var name: String
      var cluster: T?
      var user: T?
      var context: T?
    }

    struct Cluster: Decodable {
      var server: String?
      var certificateAuthority: String?
      var certificateAuthorityData: String?
      var insecureSkipTLSVerify: Bool?
      enum CodingKeys: String, CodingKey {
        case server
        case certificateAuthority = "certificate-authority"
        case certificateAuthorityData = "certificate-authority-data"
        case insecureSkipTLSVerify = "insecure-skip-tls-verify"
      }
    }

    struct User: Decodable {
      var clientCertificate: String?
      var clientCertificateData: String?
      var clientKey: String?
      var clientKeyData: String?
      var token: String?
      var tokenFile: String?
      var exec: Exec?
      var authProvider: Exec?
      struct Exec: Decodable {}
      enum CodingKeys: String, CodingKey {
        case clientCertificate = "client-certificate"
        case clientCertificateData = "client-certificate-data"
        case clientKey = "client-key"
        case clientKeyData = "client-key-data"
        case token, tokenFile, exec
        case authProvider = "auth-provider"
      }
    }

    struct Context: Decodable {
      var cluster: String
      var user: String?
    }
  }

  /// Reads a kubeconfig: the current context's cluster and user. Relative paths are relative to
  /// the kubeconfig's directory, as kubectl resolves them.
  /// - Throws: ``KiamError`` naming the file and what is wrong or unsupported.
  public static func kubeconfig(path: String) throws -> KubernetesConfiguration {
    func fail(_ problem: String) -> KiamError {
      KiamError(code: .invalidConfiguration, message: "--kubeconfig \(path): \(problem)")
    }
    guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
      throw fail("cannot read file")
    }
    let config: Kubeconfig
    do {
      config = try YAMLDecoder().decode(Kubeconfig.self, from: text)
    } catch {
      throw fail("not a valid kubeconfig: \(KiamError.describe(error))")
    }
    let base = (path as NSString).deletingLastPathComponent
    func resolvePath(_ file: String) -> String { file.hasPrefix("/") ? file : "\(base)/\(file)" }
    func readFile(_ file: String, _ what: String) throws -> [UInt8] {
      guard let bytes = FileManager.default.contents(atPath: resolvePath(file)) else {
        throw fail("\(what) \(resolvePath(file)) \(FileAccess.problem(resolvePath(file)))")
      }
      return Array(bytes)
    }
    func decodeBase64(_ text: String, _ what: String) throws -> [UInt8] {
      guard let data = Data(base64Encoded: text.filter { !$0.isWhitespace }) else {
        throw fail("\(what) is not valid base64")
      }
      return Array(data)
    }
    let contexts = config.contexts ?? []
    guard let contextName = config.currentContext ?? (contexts.count == 1 ? contexts[0].name : nil) else {
      throw fail("no current-context set")
    }
    guard let context = contexts.first(where: { $0.name == contextName })?.context else {
      throw fail("current-context \(JSON.quote(contextName)) not found in contexts")
    }
    guard let cluster = config.clusters?.first(where: { $0.name == context.cluster })?.cluster else {
      throw fail("cluster \(JSON.quote(context.cluster)) of context \(JSON.quote(contextName)) not found")
    }
    guard let server = cluster.server, server.hasPrefix("https://") || server.hasPrefix("http://") else {
      throw fail("cluster \(JSON.quote(context.cluster)) has no http(s) server URL")
    }
    var result = KubernetesConfiguration(server: server, source: "kubeconfig \(path) (context \(contextName))")
    result.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
    if let data = cluster.certificateAuthorityData {
      result.certificateAuthorityPEM = try decodeBase64(data, "certificate-authority-data")
    } else if let file = cluster.certificateAuthority {
      result.certificateAuthorityPEM = try readFile(file, "certificate-authority")
    }
    if let userName = context.user {
      guard let user = config.users?.first(where: { $0.name == userName })?.user else {
        throw fail("user \(JSON.quote(userName)) of context \(JSON.quote(contextName)) not found")
      }
      if user.exec != nil || user.authProvider != nil,
        user.token == nil, user.tokenFile == nil, user.clientCertificate == nil, user.clientCertificateData == nil
      {
        throw fail(
          "user \(JSON.quote(userName)) uses an exec or auth-provider plugin, which is not supported; use a token, tokenFile or client certificate"
        )
      }
      if let data = user.clientCertificateData {
        result.clientCertificatePEM = try decodeBase64(data, "client-certificate-data")
      } else if let file = user.clientCertificate {
        result.clientCertificatePEM = try readFile(file, "client-certificate")
      }
      if let data = user.clientKeyData {
        result.clientKeyPEM = try decodeBase64(data, "client-key-data")
      } else if let file = user.clientKey {
        result.clientKeyPEM = try readFile(file, "client-key")
      }
      if (result.clientCertificatePEM == nil) != (result.clientKeyPEM == nil) {
        throw fail("user \(JSON.quote(userName)) needs both a client certificate and a client key")
      }
      result.token = user.token
      if let file = user.tokenFile { result.tokenFile = resolvePath(file) }
    }
    return result
  }
}
