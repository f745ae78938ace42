import Foundation
import KiamShared

/// How to reach and authenticate to the Kubernetes API server.
public struct KubernetesConfiguration: Sendable {
  /// Base URL, e.g. `https://10.96.0.1:443`.
  public var server: String
  /// CA bundle for the API server's certificate; nil means the system roots.
  public var certificateAuthorityPEM: [UInt8]?
  /// Skip verification of the API server's certificate (kubeconfig `insecure-skip-tls-verify`).
  public var insecureSkipTLSVerify: Bool
  /// Client certificate and key (PEM) for certificate authentication.
  public var clientCertificatePEM: [UInt8]?
  public var clientKeyPEM: [UInt8]?
  /// A fixed bearer token.
  public var token: String?
  /// A file holding the bearer token, re-read when it rotates (projected service-account tokens).
  public var tokenFile: String?
  /// Where this configuration came from, for messages.
  public var source: String

  public init(
    server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
    clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil, token: String? = nil,
    tokenFile: String? = nil, source: String
  ) {
    self.server = server
    self.certificateAuthorityPEM = certificateAuthorityPEM
    self.insecureSkipTLSVerify = insecureSkipTLSVerify
    self.clientCertificatePEM = clientCertificatePEM
    self.clientKeyPEM = clientKeyPEM
    self.token = token
    self.tokenFile = tokenFile
    self.source = source
  }

  /// The standard service-account mount.
  public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

  /// In-cluster configuration: `KUBERNETES_SERVICE_HOST`/`_PORT`, the service-account token
  /// (re-read as it rotates) and `ca.crt`.
  public static func inCluster(
    environment: [String: String], serviceAccountDirectory: String = serviceAccountDirectory
  ) throws -> KubernetesConfiguration {
    guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
      let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty
    else {
      throw KiamError(
        code: .invalidConfiguration,
        message:
          "not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset): pass --kubeconfig, or --pod-manifests for static mode"
      )
    }
    let tokenFile = "\(serviceAccountDirectory)/token"
    guard FileAccess.isReadableFile(tokenFile) else {
      throw KiamError(
        code: .invalidConfiguration,
        message: "in-cluster service-account token \(tokenFile) \(FileAccess.problem(tokenFile))")
    }
    let caFile = "\(serviceAccountDirectory)/ca.crt"
    guard let ca = FileManager.default.contents(atPath: caFile) else {
      throw KiamError(code: .invalidConfiguration, message: "in-cluster CA \(caFile) \(FileAccess.problem(caFile))")
    }
    let hostPart = host.contains(":") ? "[\(host)]" : host
    return KubernetesConfiguration(
      server: "https://\(hostPart):\(port)", certificateAuthorityPEM: Array(ca), tokenFile: tokenFile,
      source: "in-cluster configuration")
  }
}
