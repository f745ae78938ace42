import Crypto
import Foundation
public import NIOSSL
import SwiftASN1
public import X509

#if canImport(Glibc)
  import Glibc
#endif

/// Parsed, validated contents of a ``TLSFiles`` triple.
public struct TLSMaterial: Sendable {
  /// Our certificate chain, leaf first.
  public let certificateChain: [NIOSSLCertificate]
  /// Our private key.
  public let privateKey: NIOSSLPrivateKey
  /// Our leaf certificate, parsed.
  public let leaf: Certificate
  /// Our intermediates, parsed.
  public let intermediates: [Certificate]
  /// The trusted CA certificates.
  public let caCertificates: [Certificate]
  /// The PEM bytes read from disk, for identity checks and hashing.
  public let fingerprint: SHA256Digest
  /// Raw PEM of the chain and key (the gRPC transport wants an initial copy).
  public let certificatePEM: [UInt8]
  public let keyPEM: [UInt8]

  /// The earliest `notValidAfter` among our chain, in Unix seconds.
  public var earliestExpiry: Int64 {
    ([leaf] + intermediates).map { Int64($0.notValidAfter.timeIntervalSince1970) }.min() ?? 0
  }

  /// Reads and validates the files.
  /// - Throws: ``KiamError`` (code ``KiamError/Code/tlsMaterial``) naming the file and problem.
  public static func load(_ files: TLSFiles) throws -> TLSMaterial {
    let certBytes = try readFile(files.certificatePath, flag: "cert")
    let keyBytes = try readFile(files.keyPath, flag: "key")
    let caBytes = try readFile(files.caPath, flag: "ca")
    return try parse(certificatePEM: certBytes, keyPEM: keyBytes, caPEM: caBytes, files: files)
  }

  /// Validates PEM contents.
  public static func parse(certificatePEM: [UInt8], keyPEM: [UInt8], caPEM: [UInt8], files: TLSFiles) throws
    -> TLSMaterial
  {
    func fail(_ flag: String, _ path: String, _ problem: String, _ cause: (any Error)? = nil) -> KiamError {
      KiamError(code: .tlsMaterial, message: "--\(flag) \(path): \(problem)", cause: cause)
    }
    for (flag, path, bytes) in [
      ("cert", files.certificatePath, certificatePEM), ("key", files.keyPath, keyPEM), ("ca", files.caPath, caPEM),
    ] {
      if let offset = PEMBlocks.trailingData(in: bytes) {
        throw fail(
          flag, path,
          "unexpected data after the last PEM block (at byte \(offset)): a file cut short, or something appended to it")
      }
    }
    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMBytes(certificatePEM)
    } catch {
      throw fail("cert", files.certificatePath, "not a PEM certificate", error)
    }
    guard !chain.isEmpty else { throw fail("cert", files.certificatePath, "no certificate found") }
    let parsedChain: [Certificate]
    do {
      parsedChain = try chain.map { try Certificate(derEncoded: $0.toDERBytes()) }
    } catch {
      throw fail("cert", files.certificatePath, "cannot parse certificate", error)
    }
    let key: NIOSSLPrivateKey
    do {
      key = try NIOSSLPrivateKey(bytes: keyPEM, format: .pem)
    } catch {
      throw fail("key", files.keyPath, "not a PEM private key", error)
    }
    do {
      let parsedKey = try Certificate.PrivateKey(pemEncoded: String(decoding: keyPEM, as: UTF8.self))
      guard parsedKey.publicKey == parsedChain[0].publicKey else {
        throw fail("key", files.keyPath, "private key does not match the certificate in \(files.certificatePath)")
      }
    } catch let error as KiamError {
      throw error
    } catch {
      throw fail("key", files.keyPath, "unsupported private key", error)
    }
    let ca: [Certificate]
    do {
      ca = try NIOSSLCertificate.fromPEMBytes(caPEM).map { try Certificate(derEncoded: $0.toDERBytes()) }
    } catch {
      throw fail("ca", files.caPath, "not a PEM certificate bundle", error)
    }
    guard !ca.isEmpty else { throw fail("ca", files.caPath, "no CA certificate found") }
    var hasher = SHA256()
    hasher.update(data: certificatePEM)
    hasher.update(data: keyPEM)
    hasher.update(data: caPEM)
    return TLSMaterial(
      certificateChain: chain,
      privateKey: key,
      leaf: parsedChain[0],
      intermediates: Array(parsedChain.dropFirst()),
      caCertificates: ca,
      fingerprint: hasher.finalize(),
      certificatePEM: certificatePEM,
      keyPEM: keyPEM
    )
  }

  /// Hashes the three files without parsing them (cheap change detection).
  static func fingerprint(of files: TLSFiles) throws -> SHA256Digest {
    var hasher = SHA256()
    hasher.update(data: try readFile(files.certificatePath, flag: "cert"))
    hasher.update(data: try readFile(files.keyPath, flag: "key"))
    hasher.update(data: try readFile(files.caPath, flag: "ca"))
    return hasher.finalize()
  }

  /// Reads a whole file, following symlinks (Secret volumes swap `..data`).
  static func readFile(_ path: String, flag: String) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else {
      let reason = String(cString: strerror(errno))
      throw KiamError(code: .tlsMaterial, message: "--\(flag) \(path): cannot read file: \(reason)")
    }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        let reason = String(cString: strerror(errno))
        throw KiamError(code: .tlsMaterial, message: "--\(flag) \(path): cannot read file: \(reason)")
      }
      if n == 0 { break }
      bytes.append(contentsOf: buffer[0..<n])
      if bytes.count > 1 << 20 {
        throw KiamError(code: .tlsMaterial, message: "--\(flag) \(path): file larger than 1 MiB")
      }
    }
    return bytes
  }
}
