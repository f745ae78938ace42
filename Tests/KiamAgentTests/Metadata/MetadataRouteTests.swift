import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct MetadataRouteTests {
  @Test(arguments: [
    ("/ping", MetadataRoute.ping),
    ("/health", .health),
    ("/health?deep=1", .health),
    ("/latest/api/token", .token),
    ("/latest/meta-data/iam/security-credentials/", .roleList(extended: false)),
    ("/2016-09-02/meta-data/iam/security-credentials/", .roleList(extended: false)),
    ("/latest/meta-data/iam/security-credentials-extended/", .roleList(extended: true)),
    ("/latest/meta-data/iam/security-credentials", .redirect("/latest/meta-data/iam/security-credentials/")),
    ("/latest/meta-data/iam/security-credentials?x=1", .redirect("/latest/meta-data/iam/security-credentials/?x=1")),
    (
      "/latest/meta-data/iam/security-credentials-extended",
      .redirect("/latest/meta-data/iam/security-credentials-extended/")
    ),
    ("/latest/meta-data/iam/security-credentials/app", .credentials(role: "app", extended: false)),
    ("/latest/meta-data/iam/security-credentials/app/", .credentials(role: "app", extended: false)),
    ("/latest/meta-data/iam/security-credentials/team/app", .credentials(role: "team/app", extended: false)),
    (
      "/latest/meta-data/iam/security-credentials/arn:aws:iam::1:role/x",
      .credentials(role: "arn:aws:iam::1:role/x", extended: false)
    ),
    ("/latest/meta-data/iam/security-credentials-extended/app", .credentials(role: "app", extended: true)),
    ("/latest/meta-data/iam/security-credentials//x", .redirect("/latest/meta-data/iam/security-credentials/x")),
    ("/latest/meta-data/./iam/info", .redirect("/latest/meta-data/iam/info")),
    (
      "/latest/meta-data/placement/../iam/security-credentials/",
      .redirect("/latest/meta-data/iam/security-credentials/")
    ),
    ("/latest/meta-data/%2e%2e/user-data", .redirect("/latest/user-data")),
    ("/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", .forbiddenCredentials),
    ("/latest/meta-data/placement/availability-zone", .other(path: "/latest/meta-data/placement/availability-zone")),
    ("/latest/user-data", .other(path: "/latest/user-data")),
    ("/", .other(path: "/")),
    ("/latest/meta-data/IAM/security-credentials/", .forbiddenCredentials),
    ("/latest/meta-data/iam/security-credentials%20/x", .forbiddenCredentials),
    ("/latest/Api/Token", .forbiddenCredentials),
    ("/latest/api;x/token", .forbiddenCredentials),
    ("/lat%20est/meta-data/iam/security-credentials", .redirect("/lat%20est/meta-data/iam/security-credentials/")),
    ("/latest/meta-data/placement/a%20b", .other(path: "/latest/meta-data/placement/a b")),
    ("/latest/meta-data/placement/%2e%2e%2f%2e%2e%2fuser-data", .redirect("/latest/user-data")),
  ])
  func parses(_ uri: String, _ route: MetadataRoute) {
    #expect(MetadataRoute.parse(uri: uri) == route)
  }

  /// Targets that do not decode cleanly are refused whole, never decoded with replacements.
  @Test(arguments: [
    "/latest/meta-data/placement/%ff", "/latest/meta-data/placement/%zz", "/latest/meta-data/placement/%f",
    "/latest/meta-data/placement/a%00", "/latest/meta-data/placement/a%7f", "/latest/meta-data/placement/?q=%",
    "/a\u{7f}",
    "/latest/meta-data/placement/\u{e9}", "/latest/meta-data/iam/security-credentials/%ff",
  ])
  func malformedTargets(_ uri: String) {
    guard case .malformed = MetadataRoute.parse(uri: uri) else {
      Issue.record("\(uri): \(MetadataRoute.parse(uri: uri))")
      return
    }
  }

  @Test func pathEncodingRoundTrips() {
    for path in ["/latest/meta-data/placement/a b", "/x/\u{e9}/%/?#", "/plain-path_1.2~x/+=,;:@!$&'()*"] {
      let encoded = PercentEncoding.encodePath(path)
      #expect(encoded.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "?") && $0 != UInt8(ascii: "#") })
      #expect(PercentEncoding.decodePath(encoded) == path)
    }
    #expect(PercentEncoding.encodePath("/a b/\u{e9}") == "/a%20b/%C3%A9")
  }

  /// The allocation-free path for canonical credentials paths answers exactly like the general
  /// parser, and leaves everything unusual to it.
  @Test func fastPathAgreesWithTheGeneralParser() {
    let base = [
      "/latest/meta-data/iam/security-credentials/", "/latest/meta-data/iam/security-credentials-extended/",
      "/latest/meta-data/iam/security-credentials/app-web", "/latest/meta-data/iam/security-credentials/App_1+=,.@-x/",
      "/latest/meta-data/iam/security-credentials-extended/r", "/latest/meta-data/iam/security-credentials/..",
      "/latest/meta-data/iam/security-credentials/.", "/latest/meta-data/iam/security-credentials//",
      "/latest/meta-data/iam/security-credentials/a//", "/latest/meta-data/iam/security-credentials-extende/x",
      "/latest/meta-data/iam/security-credentials-extendedx/", "/latest/meta-data/iam/security-credentials/a%2fb",
      "/latest/meta-data/iam/security-credentials/a?x=1", "/latest/meta-data/iam/security-credentials/a b",
      "/latest/meta-data/iam/security-credentialsx", "/latest/meta-data/iam/security-credentials/.a",
      "/latest/meta-data/iam/security-credentials/a/./",
    ]
    // Every single-byte insertion after the fixed prefix: deterministic, and covers separators,
    // escapes, dots and plain characters at every position.
    let alphabet = Array("a/.-%?x_2".utf8)
    var uris = base
    for uri in base {
      let bytes = Array(uri.utf8)
      for position in 40...bytes.count {
        for byte in alphabet {
          var mutated = bytes
          mutated.insert(byte, at: position)
          uris.append(String(decoding: mutated, as: UTF8.self))
        }
      }
    }
    var fast = 0
    for uri in uris {
      guard let route = MetadataRoute.fastCredentialsRoute(uri) else { continue }
      fast += 1
      #expect(route == MetadataRoute.parseGeneral(uri: uri), "\(uri)")
    }
    #expect(fast > 100)
    #expect(
      MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/app-web")
        == .credentials(role: "app-web", extended: false))
    #expect(MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/team/app") == nil)
    #expect(MetadataRoute.fastCredentialsRoute("/latest/meta-data/iam/security-credentials/..") == nil)
  }

  @Test func sameRole() {
    #expect(PodCredentialCache.sameRole("app", "/app"))
    #expect(PodCredentialCache.sameRole("app/", "app"))
    #expect(!PodCredentialCache.sameRole("app", "other"))
  }
}
