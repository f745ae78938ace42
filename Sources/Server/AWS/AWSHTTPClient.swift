import AsyncHTTPClient
import KiamShared
import NIOCore
import NIOSSL

/// The HTTP client for AWS endpoints (STS, instance metadata, container credentials).
enum AWSHTTPClient {
  /// Trusts the system roots, or only `AWS_CA_BUNDLE` when set (as the AWS SDKs do).
  static func make(environment: [String: String]) throws -> HTTPClient {
    var tls = TLSConfiguration.makeClientConfiguration()
    if let bundle = environment["AWS_CA_BUNDLE"], !bundle.isEmpty {
      do {
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(bundle))
      } catch {
        throw KiamError(code: .invalidConfiguration, message: "AWS_CA_BUNDLE \(bundle): cannot read CA bundle", cause: error)
      }
    }
    tls.shutdownTimeout = .milliseconds(500)
    var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
    configuration.timeout = .init(connect: .seconds(3), read: .seconds(10))
    configuration.connectionPool = .init(idleTimeout: .seconds(60))
    configuration.httpVersion = .http1Only
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }
}
