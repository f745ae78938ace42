import Crypto
import Foundation
import SwiftASN1
import X509

/// A certificate authority generated inside the test process (no openssl, no committed keys).
public struct TestCA: Sendable {
  public let name: String
  public let key: P256.Signing.PrivateKey
  public let certificate: Certificate

  /// Creates a self-signed CA.
  public init(name: String = "kiam-test-ca") throws {
    self.name = name
    key = P256.Signing.PrivateKey()
    let subject = try DistinguishedName { CommonName(name) }
    let now = Date()
    certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: .init(key.publicKey),
      notValidBefore: now.addingTimeInterval(-3600),
      notValidAfter: now.addingTimeInterval(86_400 * 30),
      issuer: subject,
      subject: subject,
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: try Certificate.Extensions {
        Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
        Critical(KeyUsage(keyCertSign: true, cRLSign: true))
      },
      issuerPrivateKey: .init(key))
  }

  /// The CA certificate as PEM.
  public var pem: String { (try? certificate.serializeAsPEM().pemString) ?? "" }

  /// Issues a leaf certificate.
  /// - Parameters:
  ///   - commonName: Subject CN.
  ///   - dnsNames: DNS SANs.
  ///   - ipAddresses: IPv4/IPv6 SANs as text.
  ///   - usages: Extended key usages; nil omits the extension.
  ///   - validFrom/validFor: Validity window relative to now.
  public func issue(
    commonName: String,
    dnsNames: [String] = [],
    ipAddresses: [String] = [],
    usages: [ExtendedKeyUsage.Usage]? = [.serverAuth, .clientAuth],
    validFrom: TimeInterval = -3600,
    validFor: TimeInterval = 86_400
  ) throws -> TestLeaf {
    let leafKey = P256.Signing.PrivateKey()
    let now = Date()
    var names: [GeneralName] = dnsNames.map { .dnsName($0) }
    for ip in ipAddresses {
      names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(try Self.ipBytes(ip)))))
    }
    let sans = names
    let extensions = try Certificate.Extensions {
      Critical(BasicConstraints.notCertificateAuthority)
      Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
      if !sans.isEmpty { SubjectAlternativeNames(sans) }
      if let usages { try ExtendedKeyUsage(usages) }
    }
    let certificate = try Certificate(
      version: .v3,
      serialNumber: Certificate.SerialNumber(),
      publicKey: .init(leafKey.publicKey),
      notValidBefore: now.addingTimeInterval(validFrom),
      notValidAfter: now.addingTimeInterval(validFrom + validFor),
      issuer: self.certificate.subject,
      subject: try DistinguishedName { CommonName(commonName) },
      signatureAlgorithm: .ecdsaWithSHA256,
      extensions: extensions,
      issuerPrivateKey: .init(key))
    return TestLeaf(certificate: certificate, key: leafKey)
  }

  static func ipBytes(_ text: String) throws -> [UInt8] {
    var v4 = in_addr()
    if inet_pton(AF_INET, text, &v4) == 1 {
      return withUnsafeBytes(of: &v4) { Array($0) }
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, text, &v6) == 1 {
      return withUnsafeBytes(of: &v6) { Array($0) }
    }
    throw TestSupportError("not an IP address: \(text)")
  }
}

/// A leaf certificate and its key.
public struct TestLeaf: Sendable {
  public let certificate: Certificate
  public let key: P256.Signing.PrivateKey

  public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
  public var keyPEM: String { key.pemRepresentation }
}

/// A set of PEM files on disk for one kiam process.
public struct TestTLSFiles: Sendable {
  public let certificate: String
  public let key: String
  public let ca: String

  public init(certificate: String, key: String, ca: String) {
    self.certificate = certificate
    self.key = key
    self.ca = ca
  }

  /// Writes `leaf` and `ca` into `directory` with the given base name.
  public static func write(_ leaf: TestLeaf, ca: TestCA, name: String, in directory: String) throws -> TestTLSFiles {
    let files = TestTLSFiles(
      certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name)-key.pem", ca: "\(directory)/\(name)-ca.pem")
    try leaf.certificatePEM.write(toFile: files.certificate, atomically: true, encoding: .utf8)
    try leaf.keyPEM.write(toFile: files.key, atomically: true, encoding: .utf8)
    try ca.pem.write(toFile: files.ca, atomically: true, encoding: .utf8)
    return files
  }

  /// The `--cert/--key/--ca` arguments.
  public var arguments: [String] { ["--cert=\(certificate)", "--key=\(key)", "--ca=\(ca)"] }
}

/// A complete PKI for a server and an agent.
public struct TestPKIFixture: Sendable {
  public let ca: TestCA
  public let server: TestTLSFiles
  public let agent: TestTLSFiles
  public let directory: String

  /// CA, a server certificate (localhost, kiam-server, 127.0.0.1, ::1; both EKUs) and an agent
  /// certificate (clientAuth).
  public static func make(in directory: String) throws -> TestPKIFixture {
    let ca = try TestCA()
    let server = try ca.issue(
      commonName: "kiam-server", dnsNames: ["localhost", "kiam-server"], ipAddresses: ["127.0.0.1", "::1"])
    let agent = try ca.issue(commonName: "kiam-agent", usages: [.clientAuth])
    return TestPKIFixture(
      ca: ca,
      server: try TestTLSFiles.write(server, ca: ca, name: "server", in: directory),
      agent: try TestTLSFiles.write(agent, ca: ca, name: "agent", in: directory),
      directory: directory)
  }
}

/// An error raised by test support code.
public struct TestSupportError: Error, CustomStringConvertible {
  public let description: String
  public init(_ description: String) { self.description = description }
}
