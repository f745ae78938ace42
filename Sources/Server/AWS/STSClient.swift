import AsyncHTTPClient
import Foundation
import KiamShared
import Logging
import NIOCore
import NIOHTTP1

/// Credentials returned by STS.
public struct STSCredentials: Sendable {
  public let key: AWSAccessKey
  /// `AssumedRoleUser.Arn`, e.g. `arn:aws:sts::123:assumed-role/app/kiam-kiam`.
  public let assumedRoleARN: String?
}

/// A small STS client (Query protocol over HTTPS, SigV4-signed): AssumeRole,
/// AssumeRoleWithWebIdentity and GetCallerIdentity. Each call has a connect and a total timeout,
/// and is retried with jittered exponential backoff on throttling, 5xx and transport errors only.
public final class STSClient: Sendable {
  public let endpoint: STSEndpoint
  private let http: HTTPClient
  private let logger: Logger
  private let attemptTimeout: Duration
  private let maxAttempts: Int

  init(
    endpoint: STSEndpoint, http: HTTPClient, logger: Logger, attemptTimeout: Duration = .seconds(5),
    maxAttempts: Int = 3
  ) {
    self.endpoint = endpoint
    self.http = http
    self.logger = logger
    self.attemptTimeout = attemptTimeout
    self.maxAttempts = maxAttempts
  }

  /// `sts:AssumeRole`.
  public func assumeRole(
    roleARN: String, sessionName: String, durationSeconds: Int, externalID: String?, using key: AWSAccessKey
  ) async throws -> STSCredentials {
    var params = [
      ("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleARN), ("RoleSessionName", sessionName),
      ("DurationSeconds", String(durationSeconds)),
    ]
    if let externalID, !externalID.isEmpty { params.append(("ExternalId", externalID)) }
    let xml = try await call(params, signedWith: key)
    return try Self.credentials(from: xml, result: "AssumeRoleResult")
  }

  /// `sts:AssumeRoleWithWebIdentity` (unsigned; the token is the credential).
  public func assumeRoleWithWebIdentity(
    roleARN: String, sessionName: String, webIdentityToken: String, durationSeconds: Int
  ) async throws -> STSCredentials {
    let xml = try await call(
      [
        ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleARN),
        ("RoleSessionName", sessionName), ("WebIdentityToken", webIdentityToken),
        ("DurationSeconds", String(durationSeconds)),
      ], signedWith: nil)
    return try Self.credentials(from: xml, result: "AssumeRoleWithWebIdentityResult")
  }

  /// `sts:GetCallerIdentity`: the ARN of whoever `key` belongs to.
  public func callerIdentity(using key: AWSAccessKey) async throws -> String {
    let xml = try await call([("Action", "GetCallerIdentity"), ("Version", "2011-06-15")], signedWith: key)
    guard let arn = xml.first("Arn", within: "GetCallerIdentityResult") else {
      throw STSError(code: "MalformedResponse", message: "GetCallerIdentity response without Arn", statusCode: 200)
    }
    return arn
  }

  static func credentials(from xml: MiniXML, result: String) throws -> STSCredentials {
    guard let access = xml.first("AccessKeyId", within: "Credentials"),
      let secret = xml.first("SecretAccessKey", within: "Credentials"),
      let token = xml.first("SessionToken", within: "Credentials"),
      let expirationText = xml.first("Expiration", within: "Credentials"),
      let expiration = RFC3339.parse(expirationText.trimmingCharacters(in: .whitespacesAndNewlines))
    else {
      throw STSError(code: "MalformedResponse", message: "\(result) without complete Credentials", statusCode: 200)
    }
    return STSCredentials(
      key: AWSAccessKey(
        accessKeyID: access, secretAccessKey: secret, sessionToken: token, expiration: Double(expiration)),
      assumedRoleARN: xml.first("Arn", within: "AssumedRoleUser"))
  }

  private func call(_ params: [(String, String)], signedWith key: AWSAccessKey?) async throws -> MiniXML {
    var backoff = Backoff(initial: .milliseconds(100), maximum: .seconds(2))
    var attempt = 0
    while true {
      attempt += 1
      do {
        return try await attemptCall(params, signedWith: key)
      } catch let error as STSError where error.isTransient && attempt < maxAttempts {
        let delay = backoff.next()
        logger.debug(
          "STS call failed, retrying",
          metadata: ["action": "\(params[0].1)", "error": "\(error)", "retry_in": "\(GoDuration.format(delay))"])
        try await Task.sleep(for: delay)
      }
    }
  }

  private func attemptCall(_ params: [(String, String)], signedWith key: AWSAccessKey?) async throws -> MiniXML {
    let body = params.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
    guard let components = URLComponents(string: endpoint.url), let host = components.host else {
      throw STSError(code: "InvalidEndpoint", message: "bad STS endpoint \(endpoint.url)", statusCode: 0)
    }
    let defaultPort = components.scheme == "https" ? 443 : 80
    let hostHeader = components.port.map { $0 == defaultPort ? host : "\(host):\($0)" } ?? host
    var signable = SigV4Signer.Request(
      method: "POST", host: hostHeader, path: "/",
      headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Host", hostHeader)],
      body: Array(body.utf8))
    if let key {
      SigV4Signer(service: "sts", region: endpoint.signingRegion).sign(
        &signable, with: key, date: WallClock.system.now())
    }
    var request = HTTPClientRequest(url: endpoint.url + "/")
    request.method = .POST
    for (name, value) in signable.headers where name.lowercased() != "host" {
      request.headers.add(name: name, value: value)
    }
    request.headers.add(name: "User-Agent", value: "kiam/\(KiamVersion.current)")
    request.body = .bytes(ByteBuffer(string: body))
    let response: HTTPClientResponse
    let bytes: ByteBuffer
    do {
      response = try await http.execute(request, timeout: .nanoseconds(attemptTimeout.nanoseconds))
      bytes = try await response.body.collect(upTo: 1 << 20)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      throw STSError(code: "RequestError", message: "\(endpoint.url): \(KiamError.describe(error))", statusCode: 0)
    }
    let xml = MiniXML(text: String(buffer: bytes))
    let status = Int(response.status.code)
    guard (200..<300).contains(status) else {
      throw STSError(
        code: xml.first("Code", within: "Error") ?? "HTTP\(status)",
        message: xml.first("Message", within: "Error") ?? response.status.reasonPhrase,
        statusCode: status, requestID: xml.first("RequestId"))
    }
    return xml
  }
}
