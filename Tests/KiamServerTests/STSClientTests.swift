import AsyncHTTPClient
import Foundation
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import KiamServer

@Suite struct STSEndpointTests {
  @Test(arguments: [
    (nil as String?, "https://sts.amazonaws.com", "us-east-1"),
    ("", "https://sts.amazonaws.com", "us-east-1"),
    ("us-west-2", "https://sts.us-west-2.amazonaws.com", "us-west-2"),
    ("eu-west-1", "https://sts.eu-west-1.amazonaws.com", "eu-west-1"),
    ("cn-north-1", "https://sts.cn-north-1.amazonaws.com.cn", "cn-north-1"),
    ("us-east-1-fips", "https://sts-fips.us-east-1.amazonaws.com", "us-east-1"),
    ("us-gov-east-1", "https://sts.us-gov-east-1.amazonaws.com", "us-gov-east-1"),
    ("us-iso-east-1", "https://sts.us-iso-east-1.c2s.ic.gov", "us-iso-east-1"),
    ("us-isob-east-1", "https://sts.us-isob-east-1.sc2s.sgov.gov", "us-isob-east-1"),
  ])
  func resolves(_ region: String?, _ url: String, _ signing: String) {
    #expect(STSEndpoint.resolve(region: region, override: nil) == STSEndpoint(url: url, signingRegion: signing))
  }

  @Test func overrideWins() {
    #expect(
      STSEndpoint.resolve(region: "eu-west-1", override: "https://vpce-1.sts.eu-west-1.vpce.amazonaws.com/")
        == STSEndpoint(url: "https://vpce-1.sts.eu-west-1.vpce.amazonaws.com", signingRegion: "eu-west-1"))
    #expect(STSEndpoint.resolve(region: nil, override: "http://127.0.0.1:5000").signingRegion == "us-east-1")
  }
}

@Suite struct MiniXMLTests {
  @Test func readsAssumeRoleAndErrors() throws {
    let ok = MiniXML(
      text: """
        <AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <AssumeRoleResult>
            <AssumedRoleUser><AssumedRoleId>AROA:s</AssumedRoleId><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
            <Credentials>
              <AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>a&amp;b&lt;c&#x41;&#66;</SecretAccessKey>
              <SessionToken>tok</SessionToken><Expiration>2026-11-23T05:00:00Z</Expiration>
            </Credentials>
          </AssumeRoleResult>
        </AssumeRoleResponse>
        """)
    let credentials = try STSClient.credentials(from: ok, result: "AssumeRoleResult")
    #expect(credentials.key.secretAccessKey == "a&b<cAB")
    #expect(credentials.key.expiration == Double(RFC3339.parse("2026-11-23T05:00:00Z")!))
    #expect(credentials.assumedRoleARN == "arn:aws:sts::1:assumed-role/r/s")
    let error = MiniXML(
      text:
        "<ErrorResponse><Error><Type>Sender</Type><Code>RegionDisabledException</Code><Message>STS is not activated in this region</Message></Error><RequestId>x</RequestId></ErrorResponse>"
    )
    #expect(error.first("Code", within: "Error") == "RegionDisabledException")
    #expect(error.first("RequestId") == "x")
    #expect(throws: STSError.self) {
      try STSClient.credentials(from: MiniXML(text: "<x/>"), result: "AssumeRoleResult")
    }
  }
}

/// The STS client against moto (with its signature checking on) and the fault-injecting lab.
@Suite(.serialized) struct STSClientTests {
  let logger = Logger(label: "test")

  func withSTS<T>(
    _ lab: STSLab, attempts: Int = 3, _ body: (STSClient) async throws -> T
  ) async throws -> T {
    try await withAWSHTTP { http in
      try await body(
        STSClient(
          endpoint: STSEndpoint.resolve(region: nil, override: lab.endpoint), http: http, logger: logger,
          maxAttempts: attempts))
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func signedRequestsAreCheckedByMoto() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let auth = try await lab.enableAuthentication()
    try await withSTS(lab) { sts in
      let key = AWSAccessKey(accessKeyID: auth.AccessKeyId, secretAccessKey: auth.SecretAccessKey)
      #expect(try await sts.callerIdentity(using: key) == auth.UserArn)
      let assumed = try await sts.assumeRole(
        roleARN: auth.ServerRoleArn, sessionName: "kiam-server", durationSeconds: 3600, externalID: nil, using: key)
      #expect(assumed.key.accessKeyID.hasPrefix("ASIA"))
      #expect(assumed.assumedRoleARN == "arn:aws:sts::123456789012:assumed-role/kiam_server/kiam-server")
      let expiry = try #require(assumed.key.expiration)
      #expect(abs(expiry - WallClock.system.nowPrecise() - 3600) < 60)
      // Chained: signed with a session token.
      let chained = try await sts.assumeRole(
        roleARN: "arn:aws:iam::999999999999:role/cluster-api", sessionName: "kiam-kiam", durationSeconds: 3600,
        externalID: "ext-id", using: assumed.key)
      #expect(
        try await sts.callerIdentity(using: chained.key)
          == "arn:aws:sts::999999999999:assumed-role/cluster-api/kiam-kiam")
      // A wrong secret fails the signature; an unknown key is refused.
      do {
        _ = try await sts.assumeRole(
          roleARN: auth.ServerRoleArn, sessionName: "x1", durationSeconds: 900, externalID: nil,
          using: AWSAccessKey(accessKeyID: auth.AccessKeyId, secretAccessKey: "wrong"))
        Issue.record("wrong secret accepted")
      } catch let error as STSError {
        #expect(error.code == "SignatureDoesNotMatch")
        #expect(!error.isTransient)
      }
      do {
        _ = try await sts.assumeRole(
          roleARN: auth.ServerRoleArn, sessionName: "x2", durationSeconds: 900, externalID: nil,
          using: AWSAccessKey(accessKeyID: "AKIAUNKNOWNUNKNOWN00", secretAccessKey: "x"))
        Issue.record("unknown key accepted")
      } catch let error as STSError {
        #expect(error.code == "InvalidClientTokenId")
      }
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func webIdentity() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await withSTS(lab) { sts in
      let result = try await sts.assumeRoleWithWebIdentity(
        roleARN: "arn:aws:iam::123456789012:role/irsa", sessionName: "kiam-server",
        webIdentityToken: "eyJhbGciOi.jwt.sig",
        durationSeconds: 3600)
      #expect(!result.key.accessKeyID.isEmpty)
      #expect(try await lab.stats().web_identity == 1)
    }
  }

  @Test(
    .enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"),
    arguments: [
      ("RegionDisabledException", "403", false), ("ExpiredToken", "400", false), ("InvalidClientTokenId", "403", false),
      ("AccessDenied", "403", false), ("ServiceUnavailable", "503", true), ("InternalFailure", "500", true),
    ])
  func errorResponses(_ code: String, _ status: String, _ transient: Bool) async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["error_rate": "1", "error_code": code, "error_status": status])
    try await withSTS(lab) { sts in
      do {
        _ = try await sts.assumeRole(
          roleARN: "arn:aws:iam::123456789012:role/a", sessionName: "kiam-kiam", durationSeconds: 900, externalID: nil,
          using: AWSAccessKey(accessKeyID: "AKIAX", secretAccessKey: "y"))
        Issue.record("expected \(code)")
      } catch let error as STSError {
        #expect(error.code == code)
        #expect(error.message == "lab injected \(code)")
        #expect(error.statusCode == Int(status))
        #expect(error.isTransient == transient)
        #expect(error.description == "\(code): lab injected \(code)")
      }
      // Retries only for transient errors: 3 attempts, or 1.
      #expect(try await lab.stats().calls("arn:aws:iam::123456789012:role/a") == (transient ? 3 : 1))
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func throttlingIsRetriedWithBackoffThenSucceeds() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["throttle_rate": "1"])
    try await withSTS(lab) { sts in
      let key = AWSAccessKey(accessKeyID: "AKIAX", secretAccessKey: "y")
      do {
        _ = try await sts.assumeRole(
          roleARN: "arn:aws:iam::1:role/t", sessionName: "kk", durationSeconds: 900, externalID: nil, using: key)
        Issue.record("expected throttling")
      } catch let error as STSError {
        #expect(error.isThrottling)
      }
      #expect(try await lab.stats().throttled == 3)
      // Two throttled answers, then moto's: the third attempt gets through (exactly, not by chance).
      try await lab.setFaults(["throttle_rate": "0", "throttle_next": "2"])
      let credentials = try await sts.assumeRole(
        roleARN: "arn:aws:iam::1:role/t-ok", sessionName: "kk", durationSeconds: 900, externalID: nil, using: key)
      #expect(credentials.key.accessKeyID.hasPrefix("ASIA"))
      let stats = try await lab.stats()
      #expect(stats.throttled == 5)
      #expect(stats.calls("arn:aws:iam::1:role/t-ok") == 3)
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func resetConnectionsAreTransientAndRetried() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["reset_rate": "1"])
    try await withSTS(lab) { sts in
      do {
        _ = try await sts.assumeRole(
          roleARN: "arn:aws:iam::1:role/r", sessionName: "kk", durationSeconds: 900, externalID: nil,
          using: AWSAccessKey(accessKeyID: "AKIAX", secretAccessKey: "y"))
        Issue.record("expected a transport error")
      } catch let error as STSError {
        #expect(error.statusCode == 0)
        #expect(error.isTransient)
      }
      #expect(try await lab.stats().resets == 3)
    }
  }

  @Test func unreachableEndpointFailsWithinTheTimeouts() async throws {
    let port = try FreePort.next()
    try await withAWSHTTP { http in
      let sts = STSClient(
        endpoint: STSEndpoint(url: "http://127.0.0.1:\(port)", signingRegion: "us-east-1"), http: http, logger: logger,
        attemptTimeout: .seconds(1), maxAttempts: 2)
      let clock = ContinuousClock()
      let started = clock.now
      await #expect(throws: STSError.self) {
        _ = try await sts.assumeRole(
          roleARN: "arn:aws:iam::1:role/r", sessionName: "kk", durationSeconds: 900, externalID: nil,
          using: AWSAccessKey(accessKeyID: "AKIAX", secretAccessKey: "y"))
      }
      #expect(clock.now - started < .seconds(15))
    }
  }
}

/// Runs `body` with an AWS HTTP client and shuts it down afterwards.
func withAWSHTTP<T>(environment: [String: String] = [:], _ body: (AsyncHTTPClient.HTTPClient) async throws -> T)
  async throws -> T
{
  let http = try AWSHTTPClient.make(environment: environment)
  do {
    let result = try await body(http)
    try await http.shutdown()
    return result
  } catch {
    try? await http.shutdown()
    throw error
  }
}
