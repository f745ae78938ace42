import Foundation
public import NIOSSL

#if canImport(Glibc)
  import Glibc
#endif

/// The CA certificates outbound TLS clients trust when nothing more specific is configured,
/// found the way Go's `crypto/x509` finds them on Linux, so a kiam image sees the same roots as
/// Go kiam's did with the same host directory mounted.
///
/// The order (Go's `root_linux.go` and `root_unix.go`):
/// 1. one bundle file: `SSL_CERT_FILE` when set, else the first of ``bundleFiles`` that exists
///    (Debian, RHEL 6, openSUSE, OpenELEC, RHEL 7, Alpine);
/// 2. then every file in the directories of `SSL_CERT_DIR` (colon-separated) when set, else in
///    ``directories`` (`/etc/ssl/certs`, `/etc/pki/tls/certs`). Symbolic links to files in the
///    same directory (OpenSSL's hash links) are skipped, as Go does.
///
/// Every file contributes the `CERTIFICATE` blocks it holds; anything else in it (comments,
/// keys, broken blocks) is skipped. The seed's RHEL manifests mount
/// `/etc/pki/ca-trust/extracted/pem/` on `/etc/ssl/certs`: no bundle file of the list exists
/// there, and step 2 finds `tls-ca-bundle.pem` (BoringSSL's defaults, a bundle path or an
/// OpenSSL hash directory, find nothing in it).
public struct SystemTrustRoots: Sendable {
  /// The certificates found, without duplicates.
  public let certificates: [NIOSSLCertificate]
  /// Where they came from, for the one log line at start-up.
  public let sources: [String]

  /// Go's list of bundle files, tried in order; the first that can be read is used.
  public static let bundleFiles = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
  ]

  /// Go's directories, every file of which is read.
  public static let directories = ["/etc/ssl/certs", "/etc/pki/tls/certs"]

  /// Finds the roots.
  /// - Parameters:
  ///   - environment: For `SSL_CERT_FILE` and `SSL_CERT_DIR`.
  ///   - root: Prefix for every path (tests); empty on a real system.
  public static func load(environment: [String: String], root: String = "") -> SystemTrustRoots {
    var collector = Collector()
    let files = environment["SSL_CERT_FILE"].flatMap { $0.isEmpty ? nil : [$0] } ?? bundleFiles
    for file in files {
      guard let bytes = readFile(root + file) else { continue }
      let count = collector.add(pem: bytes)
      collector.sources.append("\(file) (\(count) certificates)")
      break
    }
    let dirs =
      environment["SSL_CERT_DIR"].flatMap { $0.isEmpty ? nil : $0.split(separator: ":").map(String.init) }
      ?? directories
    for directory in dirs {
      var added = 0
      var read = 0
      for name in uniqueEntries(root + directory) {
        guard let bytes = readFile(root + directory + "/" + name) else { continue }
        read += 1
        added += collector.add(pem: bytes)
      }
      if read > 0 { collector.sources.append("\(directory) (\(read) files, \(added) new certificates)") }
    }
    return SystemTrustRoots(certificates: collector.certificates, sources: collector.sources)
  }

  /// One line saying where the roots came from (or that there are none).
  public var summary: String {
    if certificates.isEmpty {
      return
        "no CA certificates found (looked at SSL_CERT_FILE, SSL_CERT_DIR, \(Self.bundleFiles.joined(separator: ", ")), "
        + "\(Self.directories.joined(separator: ", "))): TLS connections to servers with public certificates will fail"
    }
    return "\(certificates.count) CA certificates from \(sources.joined(separator: "; "))"
  }

  /// The roots as NIOSSL trust roots.
  public var trustRoots: NIOSSLTrustRoots { .certificates(certificates) }

  /// A client TLS configuration trusting these roots (and nothing else).
  public var clientConfiguration: TLSConfiguration {
    var tls = TLSConfiguration.makeClientConfiguration()
    tls.trustRoots = trustRoots
    return tls
  }

  /// Certificates found so far, deduplicated by their DER bytes.
  private struct Collector {
    var certificates: [NIOSSLCertificate] = []
    var seen = Set<[UInt8]>()
    var sources: [String] = []

    /// Adds the certificates of a PEM file; returns how many were new.
    mutating func add(pem bytes: [UInt8]) -> Int {
      var added = 0
      for block in PEMBlocks.certificates(in: bytes) {
        guard let certificate = try? NIOSSLCertificate(bytes: block, format: .pem),
          let der = try? certificate.toDERBytes(), seen.insert(der).inserted
        else { continue }
        certificates.append(certificate)
        added += 1
      }
      return added
    }
  }

  /// The names in `directory` without Go's duplicates: symbolic links whose target has no `/`
  /// (a file in the same directory, like OpenSSL's hash links) are left out.
  static func uniqueEntries(_ directory: String) -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    return names.sorted().filter { name in
      guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: directory + "/" + name) else {
        return true
      }
      return target.contains("/")
    }
  }

  /// A regular file's bytes (following symbolic links), nil for anything else.
  static func readFile(_ path: String) -> [UInt8]? {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
      let data = FileManager.default.contents(atPath: path)
    else { return nil }
    return Array(data)
  }
}

/// Splits PEM text into its `CERTIFICATE` blocks (each with its BEGIN and END lines).
enum PEMBlocks {
  static let begin = Array("-----BEGIN CERTIFICATE-----".utf8)
  static let end = Array("-----END CERTIFICATE-----".utf8)

  static func certificates(in bytes: [UInt8]) -> [[UInt8]] {
    var blocks: [[UInt8]] = []
    var index = 0
    while let start = find(begin, in: bytes, from: index) {
      guard let stop = find(end, in: bytes, from: start + begin.count) else { break }
      blocks.append(Array(bytes[start..<(stop + end.count)]) + [UInt8(ascii: "\n")])
      index = stop + end.count
    }
    return blocks
  }

  /// Where something other than white space follows the last PEM block (`-----END …-----`
  /// line) of `bytes`, as a byte offset; nil when nothing does or there is no block. A file cut
  /// short or with another file appended shows up here (BoringSSL's reader ignores such bytes).
  static func trailingData(in bytes: [UInt8]) -> Int? {
    let marker = Array("-----END ".utf8)
    var last: Int?
    var index = 0
    while let found = find(marker, in: bytes, from: index) {
      last = found
      index = found + marker.count
    }
    guard let last, let close = find(Array("-----".utf8), in: bytes, from: last + marker.count) else { return nil }
    let rest = bytes[(close + 5)...]
    let blank: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
    return rest.firstIndex { !blank.contains($0) }
  }

  private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
    guard haystack.count >= needle.count, from <= haystack.count - needle.count else { return nil }
    var i = from
    while i <= haystack.count - needle.count {
      if haystack[i] == needle[0] && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
      i += 1
    }
    return nil
  }
}
