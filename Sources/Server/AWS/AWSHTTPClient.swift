import AsyncHTTPClient
import KiamShared
import NIOCore
import NIOSSL

/// The HTTP client for AWS endpoints (STS, instance metadata, container credentials).
enum AWSHTTPClient {
  /// What AWS endpoints are verified against: only `AWS_CA_BUNDLE` when set (as the AWS SDKs
  /// do), else the system roots found as Go finds them (``SystemTrustRoots``).
  struct Trust: Sendable {
    let roots: NIOSSLTrustRoots
    /// One line for the start-up log.
    let summary: String

    static func resolve(environment: [String: String], system: SystemTrustRoots) throws -> Trust {
      if let bundle = environment["AWS_CA_BUNDLE"], !bundle.isEmpty {
        let certificates: [NIOSSLCertificate]
        do {
          certificates = try NIOSSLCertificate.fromPEMFile(bundle)
        } catch {
          throw KiamError(
            code: .invalidConfiguration, message: "AWS_CA_BUNDLE \(bundle): cannot read CA bundle", cause: error)
        }
        guard !certificates.isEmpty else {
          throw KiamError(code: .invalidConfiguration, message: "AWS_CA_BUNDLE \(bundle): no certificate in the file")
        }
        return Trust(
          roots: .certificates(certificates), summary: "AWS_CA_BUNDLE \(bundle) (\(certificates.count) certificates)")
      }
      return Trust(roots: system.trustRoots, summary: system.summary)
    }
  }

  static func make(environment: [String: String]) throws -> HTTPClient {
    make(trust: try Trust.resolve(environment: environment, system: SystemTrustRoots.load(environment: environment)))
  }

  static func make(trust: Trust) -> HTTPClient {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = trust.roots
    tls.shutdownTimeout = .milliseconds(500)
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.timeout = .init(connect: .seconds(3), read: .seconds(10))
    configuration.connectionPool = .init(idleTimeout: .seconds(60))
    configuration.httpVersion = .http1Only
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }
}
