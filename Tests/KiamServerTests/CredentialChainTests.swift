import Foundation
import KiamShared
import KiamTestSupport
import Logging
import Synchronization
import Testing

@testable import KiamServer

/// The server's own credentials, found like the AWS SDKs' default chain, against moto.
@Suite(.serialized) struct CredentialChainTests {
  let logger = Logger(label: "test")

  func resolve(_ env: [String: String], lab: STSLab?) async throws -> (String, AWSAccessKey) {
    try await withAWSHTTP { http in
      let endpoint = lab?.endpoint ?? "http://127.0.0.1:1"
      let sts = STSClient(endpoint: STSEndpoint.resolve(region: nil, override: endpoint), http: http, logger: logger)
      let metadata = InstanceMetadataClient(endpoint: env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] ?? endpoint, http: http)
      let provider = try AWSCredentialChain.resolve(
        environment: env, http: http, sts: sts, metadata: metadata, logger: logger)
      return (provider.name, try await provider.accessKey())
    }
  }

  @Test func environmentVariablesComeFirst() async throws {
    let (name, key) = try await resolve(
      [
        "AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t",
        "AWS_ROLE_ARN": "ignored",
        "AWS_WEB_IDENTITY_TOKEN_FILE": "/ignored",
      ], lab: nil)
    #expect(name == "environment")
    #expect(key == AWSAccessKey(accessKeyID: "AKIAENV", secretAccessKey: "s", sessionToken: "t"))
  }

  @Test func sharedProfiles() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let credentials = try dir.write(
      "credentials",
      """
      [default]
      aws_access_key_id = AKIADEFAULT
      aws_secret_access_key = default-secret
      # a comment
      [dev]
      aws_access_key_id=AKIADEV
      aws_secret_access_key=dev-secret
      aws_session_token = dev-token
      """)
    let config = try dir.write(
      "config",
      """
      [profile cfg]
      aws_access_key_id = AKIACFG
      aws_secret_access_key = cfg-secret
      region = eu-west-1
      [profile empty]
      region = eu-west-1
      """)
    let base = ["AWS_SHARED_CREDENTIALS_FILE": credentials, "AWS_CONFIG_FILE": config]
    #expect(try await resolve(base, lab: nil).1.accessKeyID == "AKIADEFAULT")
    let (devName, dev) = try await resolve(base.merging(["AWS_PROFILE": "dev"]) { a, _ in a }, lab: nil)
    #expect(devName == "shared profile dev")
    #expect(dev == AWSAccessKey(accessKeyID: "AKIADEV", secretAccessKey: "dev-secret", sessionToken: "dev-token"))
    #expect(try await resolve(base.merging(["AWS_PROFILE": "cfg"]) { a, _ in a }, lab: nil).1.accessKeyID == "AKIACFG")
    do {
      _ = try await resolve(base.merging(["AWS_PROFILE": "empty"]) { a, _ in a }, lab: nil)
      Issue.record("a profile without keys was accepted")
    } catch let error as KiamError {
      #expect(error.message.contains("AWS_PROFILE empty"))
    }
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func webIdentityIRSA() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let token = try dir.write("token", "eyJhbGciOiJSUzI1NiJ9.e30.sig\n")
    let (name, key) = try await resolve(
      [
        "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/kiam-server-irsa", "AWS_WEB_IDENTITY_TOKEN_FILE": token,
        "HOME": dir.path,
      ], lab: lab)
    #expect(name == "web identity arn:aws:iam::123456789012:role/kiam-server-irsa")
    #expect(key.accessKeyID.hasPrefix("ASIA"))
    #expect(key.expiration != nil)
    #expect(try await lab.stats().web_identity == 1)
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func containerCredentials() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    // moto's credentials document has the container endpoint's shape.
    let (name, key) = try await resolve(
      [
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(lab.endpoint)/latest/meta-data/iam/security-credentials/default-role",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer abc", "HOME": dir.path,
      ], lab: lab)
    #expect(name.hasPrefix("container credentials"))
    #expect(key.accessKeyID == "test-key")
    #expect(key.sessionToken == "test-session-token")
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func instanceMetadataWithIMDSv2() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let (name, key) = try await resolve(
      ["AWS_EC2_METADATA_SERVICE_ENDPOINT": lab.endpoint, "HOME": dir.path], lab: lab)
    #expect(name == "instance metadata \(lab.endpoint)")
    #expect(key.accessKeyID == "test-key")
    #expect((key.expiration ?? 0) > WallClock.system.nowPrecise() + 3600)
  }

  @Test func metadataDisabledWithNothingElseIsAClearError() async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    do {
      _ = try await resolve(["AWS_EC2_METADATA_DISABLED": "true", "HOME": dir.path], lab: nil)
      Issue.record("expected an error")
    } catch let error as KiamError {
      #expect(error.message.contains("no AWS credentials"))
    }
  }

  @Test func refreshingProviderRefreshesBeforeExpiryAndKeepsValidOnFailure() async throws {
    let calls = Counter()
    // Expires in 10 min: cached (refresh 5 min before expiry).
    let provider = RefreshingCredentialProvider(name: "test", refreshBefore: .seconds(300)) {
      let n = calls.next()
      return AWSAccessKey(accessKeyID: "K\(n)", secretAccessKey: "s", expiration: WallClock.system.nowPrecise() + 600)
    }
    #expect(try await provider.accessKey().accessKeyID == "K1")
    #expect(try await provider.accessKey().accessKeyID == "K1")
    #expect(calls.value == 1)
    // Credentials inside the refresh window (4 min left) are refetched on use; when that fails,
    // the still-valid ones are kept.
    let short = RefreshingCredentialProvider(name: "short", refreshBefore: .seconds(300)) {
      let n = calls.next()
      if n >= 3 { throw KiamError(code: .upstream, message: "down") }
      return AWSAccessKey(accessKeyID: "S\(n)", secretAccessKey: "s", expiration: WallClock.system.nowPrecise() + 240)
    }
    #expect(try await short.accessKey().accessKeyID == "S2")
    #expect(try await short.accessKey().accessKeyID == "S2")
    #expect(calls.value == 3)
  }

  /// A request that gives up while another one fetches the server's own credentials returns at
  /// once instead of staying suspended until the fetch ends (it had no cancellation handler).
  @Test func aWaiterThatGivesUpIsNotHeldByTheFetch() async throws {
    let (gate, open) = AsyncStream<Void>.makeStream()
    let started = Counter()
    let provider = RefreshingCredentialProvider(name: "slow") {
      _ = started.next()
      for await _ in gate { break }
      return AWSAccessKey(accessKeyID: "K", secretAccessKey: "s", expiration: WallClock.system.nowPrecise() + 3600)
    }
    let fetching = Task { try await provider.accessKey() }
    for _ in 0..<500 where started.value == 0 { try await Task.sleep(for: .milliseconds(10)) }
    try #require(started.value == 1)
    let waiting = Task { try await provider.accessKey() }
    waiting.cancel()
    // The waiter's answer, or nothing if it is still suspended after 5 s.
    let outcome = await withTaskGroup(of: String?.self) { group in
      group.addTask {
        do {
          return "got \(try await waiting.value.accessKeyID)"
        } catch {
          return "\(type(of: error))"
        }
      }
      group.addTask {
        try? await Task.sleep(for: .seconds(5))
        return nil
      }
      let first = await group.next() ?? nil
      open.yield()
      group.cancelAll()
      return first
    }
    #expect(outcome == "CancellationError", "the cancelled waiter: \(outcome ?? "still suspended")")
    #expect(try await fetching.value.accessKeyID == "K")
    #expect(started.value == 1)
  }

  @Test func anAsyncValueWaiterThatGivesUpReturns() async throws {
    let value = AsyncValue<Int>()
    let waiting = Task { try await value.value }
    waiting.cancel()
    await #expect(throws: CancellationError.self) { try await waiting.value }
    value.succeed(7)
    #expect(try await value.value == 7)
  }

  @Test(.enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
  func baseARNAutodetection() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await withAWSHTTP { http in
      let metadata = InstanceMetadataClient(endpoint: lab.endpoint, http: http)
      #expect(
        try await BaseARNDetector.detect(metadata, timeout: .seconds(5), logger: logger)
          == "arn:aws:iam::123456789012:role/")
      // Failing at first, then recovering within the bound: retried.
      try await lab.setFaults(["iam_info_status": "500"])
      async let detected = BaseARNDetector.detect(metadata, timeout: .seconds(20), logger: logger)
      try await Task.sleep(for: .seconds(1))
      try await lab.setFaults(["iam_info_status": "200"])
      #expect(try await detected == "arn:aws:iam::123456789012:role/")
      // Failing for good: a clear error naming the path.
      try await lab.setFaults(["iam_info_status": "404"])
      do {
        _ = try await BaseARNDetector.detect(metadata, timeout: .seconds(2), logger: logger)
        Issue.record("expected failure")
      } catch let error as KiamError {
        #expect(error.description.contains("/latest/meta-data/iam/info"))
        #expect(error.description.contains("--role-base-arn"))
      }
    }
  }
}

/// A thread-safe counter for tests.
final class Counter: Sendable {
  private let count = Mutex(0)
  func next() -> Int {
    count.withLock {
      $0 += 1
      return $0
    }
  }
  var value: Int { count.withLock { $0 } }
}
