import Foundation
import KiamShared
import KiamTestSupport
import Testing
import X509

/// Go's `crypto/x509` root discovery on Linux, on file trees laid out as distributions do.
@Suite struct SystemTrustRootsTests {
  let first = try! TestCA(name: "first root")
  let second = try! TestCA(name: "second root")
  let third = try! TestCA(name: "third root")

  func tree(_ files: [String: String], links: [String: String] = [:]) throws -> TemporaryDirectory {
    let dir = try TemporaryDirectory()
    for (path, text) in files {
      try FileManager.default.createDirectory(
        atPath: dir.path + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try text.write(toFile: dir.path + path, atomically: true, encoding: .utf8)
    }
    for (link, target) in links {
      try FileManager.default.createDirectory(
        atPath: dir.path + (link as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try FileManager.default.createSymbolicLink(atPath: dir.path + link, withDestinationPath: target)
    }
    return dir
  }

  func names(_ roots: SystemTrustRoots) -> Set<String> {
    Set(
      roots.certificates.compactMap { certificate in
        (try? Certificate(derEncoded: certificate.toDERBytes())).map {
          "\($0.subject)".replacingOccurrences(of: "CN=", with: "")
        }
      })
  }

  @Test func debianBundleAndItsDirectoryWithoutDuplicates() throws {
    // /etc/ssl/certs holds the bundle, one file per CA (links into /usr/share; absolute on a real
    // system, relative here to stay in the test tree) and hash links.
    let dir = try tree(
      [
        "/etc/ssl/certs/ca-certificates.crt": first.pem + second.pem,
        "/usr/share/ca-certificates/first.crt": first.pem,
        "/usr/share/ca-certificates/second.crt": second.pem,
      ],
      links: [
        "/etc/ssl/certs/first.pem": "../../../usr/share/ca-certificates/first.crt",
        "/etc/ssl/certs/second.pem": "../../../usr/share/ca-certificates/second.crt",
        "/etc/ssl/certs/1a2b3c4d.0": "first.pem",
      ])
    defer { dir.remove() }
    let roots = SystemTrustRoots.load(environment: [:], root: dir.path)
    #expect(roots.certificates.count == 2)
    #expect(names(roots) == ["first root", "second root"])
    #expect(roots.sources.first == "/etc/ssl/certs/ca-certificates.crt (2 certificates)")
    // The hash link is skipped (a link within the directory), the two .pem links are read.
    #expect(roots.sources.last == "/etc/ssl/certs (3 files, 0 new certificates)")
  }

  /// The seed's RHEL and Amazon Linux manifests: the host's /etc/pki/ca-trust/extracted/pem/
  /// mounted on /etc/ssl/certs. No bundle file of Go's list is there; the directory scan finds it.
  @Test func rhelExtractedDirectoryMountedOnEtcSslCerts() throws {
    let dir = try tree([
      "/etc/ssl/certs/tls-ca-bundle.pem": "# first root\n" + first.pem + "\n# second root\n" + second.pem,
      "/etc/ssl/certs/email-ca-bundle.pem": third.pem,
      "/etc/ssl/certs/objsign-ca-bundle.pem": "",
      "/etc/ssl/certs/README": "This directory is managed by update-ca-trust.\n",
    ])
    defer { dir.remove() }
    try FileManager.default.createDirectory(
      atPath: dir.path + "/etc/ssl/certs/directory-hash", withIntermediateDirectories: true)
    let roots = SystemTrustRoots.load(environment: [:], root: dir.path)
    #expect(names(roots) == ["first root", "second root", "third root"])
    #expect(roots.summary.contains("/etc/ssl/certs (4 files, 3 new certificates)"), "\(roots.summary)")
  }

  @Test func firstExistingBundleOfGosListWins() throws {
    let dir = try tree([
      "/etc/pki/tls/certs/ca-bundle.crt": first.pem,
      "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem": second.pem,
      "/etc/ssl/cert.pem": third.pem,
    ])
    defer { dir.remove() }
    let roots = SystemTrustRoots.load(environment: [:], root: dir.path)
    // RHEL 6's bundle comes first in the list; /etc/pki/tls/certs is a directory Go reads too.
    #expect(names(roots) == ["first root"])
    #expect(roots.sources.first == "/etc/pki/tls/certs/ca-bundle.crt (1 certificates)")
  }

  @Test func sslCertFileAndSslCertDirReplaceTheDefaults() throws {
    let dir = try tree([
      "/etc/ssl/certs/ca-certificates.crt": first.pem,
      "/opt/ca/one.pem": second.pem,
      "/opt/more/a.crt": third.pem,
      "/opt/other/b.crt": first.pem,
    ])
    defer { dir.remove() }
    let fileOnly = SystemTrustRoots.load(
      environment: ["SSL_CERT_FILE": "/opt/ca/one.pem", "SSL_CERT_DIR": "/nowhere"], root: dir.path)
    #expect(names(fileOnly) == ["second root"])
    let dirs = SystemTrustRoots.load(
      environment: ["SSL_CERT_FILE": "/missing", "SSL_CERT_DIR": "/opt/more:/opt/other"], root: dir.path)
    #expect(names(dirs) == ["third root", "first root"])
  }

  @Test func garbageIsSkippedAndNothingFoundIsSaid() throws {
    let dir = try tree([
      "/etc/ssl/certs/broken.pem": "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n"
        + first.pem,
      "/etc/ssl/certs/key.pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
      "/etc/ssl/certs/binary.der": String(decoding: [0, 1, 2, 255, 254], as: UTF8.self),
    ])
    defer { dir.remove() }
    #expect(names(SystemTrustRoots.load(environment: [:], root: dir.path)) == ["first root"])
    let empty = try tree([:])
    defer { empty.remove() }
    let none = SystemTrustRoots.load(environment: [:], root: empty.path)
    #expect(none.certificates.isEmpty)
    #expect(none.summary.hasPrefix("no CA certificates found"))
  }
}
