import Foundation
import KiamTestSupport
import Testing

/// What the allow-list checks is what the node's metadata service gets: the agent forwards the
/// path it decoded and checked, encoded again, never the raw target; a target that does not decode
/// cleanly is 400; a credentials or token path in any spelling is never passed through. Through
/// the real agent, with a metadata service that records every request line.
@Suite(.serialized) struct ProxyPathTests {
  func withAgent(allowRoutes: String, _ body: (AgentHarness, RecordingHTTPServer) async throws -> Void) async throws {
    let h = try await AgentHarness()
    let upstream = try RecordingHTTPServer()
    try await withCleanup({
      await h.stop()
      await upstream.stop()
    }) {
      try await h.startServer()
      try await h.startAgent(["--metadata-endpoint=http://127.0.0.1:\(upstream.port)"], allowRoutes: allowRoutes)
      try await body(h, upstream)
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func theCheckedPathIsTheForwardedPath() async throws {
    try await withAgent(allowRoutes: "^/latest/meta-data/placement/") { h, upstream in
      // The issue's request: `%ff` is not UTF-8; it used to reach the upstream as `GET /?probe=1&x=../../user-data`.
      let attack = try h.get("/latest/meta-data/placement/%ff?probe=1&x=../../user-data")
      #expect(attack.status == 400, "\(attack.status) \(attack.body)")
      for bad in [
        "/latest/meta-data/placement/%zz", "/latest/meta-data/placement/%f", "/latest/meta-data/placement/a%00b",
        "/latest/meta-data/placement/a%0d%0aHost:x", "/latest/meta-data/placement/x?y=%g1",
        "/latest/meta-data/placement/%c0%af",
      ] {
        #expect(try h.get(bad).status == 400, "\(bad)")
      }
      #expect(upstream.proxiedRequestLines.isEmpty, "\(upstream.proxiedRequestLines)")

      // Escapes are decoded once and sent in one canonical spelling; the query goes as it came.
      let cases = [
        (
          "/latest/meta-data/placement/availability%2Dzone",
          "GET /latest/meta-data/placement/availability-zone HTTP/1.1"
        ),
        ("/latest/meta-data/placement/a%20b?x=1&y=%2F", "GET /latest/meta-data/placement/a%20b?x=1&y=%2F HTTP/1.1"),
        ("/latest/meta-data/placement/%C3%A9", "GET /latest/meta-data/placement/%C3%A9 HTTP/1.1"),
      ]
      for (sent, forwarded) in cases {
        let answer = try h.get(sent)
        #expect(answer.status == 200 && answer.body == "ok", "\(sent): \(answer.status) \(answer.body)")
        #expect(
          upstream.proxiedRequestLines.last == forwarded,
          "\(sent) reached the upstream as \(upstream.proxiedRequestLines.last ?? "nothing")")
      }
      // A decoded slash is a slash for the allow-list too: `%2F..%2F` is cleaned (redirect), not proxied.
      let sneaky = try h.get("/latest/meta-data/placement/%2E%2E%2F%2E%2E%2Fuser-data")
      #expect(
        sneaky.status == 301 && sneaky.headers["location"] == "/latest/user-data", "\(sneaky.status) \(sneaky.headers)")
      #expect(upstream.proxiedRequestLines.count == cases.count)
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs python3 with moto (scripts/install-test-deps.sh)"))
  func credentialsAndTokenPathsAreNeverProxiedInAnySpelling() async throws {
    try await withAgent(allowRoutes: ".*") { h, upstream in
      let spellings = [
        "/latest/meta-data/IAM/security-credentials/", "/latest/meta-data/iam/Security-Credentials/node-role",
        "/latest/meta-data/iam/security-credentials%20/node-role", "/latest/meta-data/iam%20/security-credentials/",
        "/latest/meta-data/iam/security-credentials%00/node-role",
        "/latest/meta-data/iam/security-credentials;x/node-role",
        "/latest/meta-data/iam/security-credentials%09/node-role",
        "/latest/meta-data/iam/SECURITY-CREDENTIALS-EXTENDED/r",
        "/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
        "/latest/meta-data/Identity-Credentials/ec2/security-credentials/ec2-instance",
        "/latest/API/token", "/latest/api/Token", "/latest/api%20/token", "/LATEST/META-DATA/IAM/SECURITY-CREDENTIALS/",
        "/latest/meta-data/iam/security%2Dcredentials%20/x", "/latest/api;x/token",
        "/latest/meta-data/iam;v=1/security-credentials/",
        "/latest/meta-data/iam/security-credentials;jsessionid=1/node-role",
      ]
      for path in spellings {
        for method in ["GET", "PUT"] {
          let answer = try h.get(path, method: method)
          #expect((400..<500).contains(answer.status), "\(method) \(path): \(answer.status) \(answer.body)")
        }
      }
      #expect(upstream.proxiedRequestLines.isEmpty, "proxied: \(upstream.proxiedRequestLines)")
      // Other paths still pass.
      #expect(try h.get("/latest/meta-data/instance-id").body == "ok")
      #expect(upstream.proxiedRequestLines == ["GET /latest/meta-data/instance-id HTTP/1.1"])
    }
  }
}
