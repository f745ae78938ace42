import AsyncHTTPClient
import Foundation
import KiamShared
import Logging
import NIOCore
import NIOHTTP1

/// Finds the server's own credentials the way the AWS SDKs' default chain does, first match wins:
/// 1. environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`);
/// 2. a shared credentials/config profile (`AWS_PROFILE`, else `default`;
///    `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`);
/// 3. web identity, i.e. IRSA (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`);
/// 4. container credentials (`AWS_CONTAINER_CREDENTIALS_FULL_URI` / `_RELATIVE_URI`, with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`);
/// 5. EC2 instance metadata with IMDSv2 (unless `AWS_EC2_METADATA_DISABLED=true`).
/// Expiring credentials are refreshed five minutes before they expire.
enum AWSCredentialChain {
  static func resolve(
    environment env: [String: String], http: HTTPClient, sts: STSClient, metadata: InstanceMetadataClient,
    logger: Logger
  ) throws -> any AWSCredentialProvider {
    if let id = env["AWS_ACCESS_KEY_ID"], !id.isEmpty, let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty {
      let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
      return StaticCredentialProvider(
        name: "environment", key: AWSAccessKey(accessKeyID: id, secretAccessKey: secret, sessionToken: token))
    }
    if let profile = try SharedProfile.load(environment: env) {
      return StaticCredentialProvider(name: "shared profile \(profile.name)", key: profile.key)
    }
    if let roleARN = env["AWS_ROLE_ARN"], !roleARN.isEmpty, let tokenFile = env["AWS_WEB_IDENTITY_TOKEN_FILE"],
      !tokenFile.isEmpty
    {
      let session = env["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "kiam-server"
      return RefreshingCredentialProvider(name: "web identity \(roleARN)") {
        let token: String
        do {
          token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
          throw KiamError(
            code: .invalidConfiguration, message: "AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile): cannot read", cause: error)
        }
        return try await sts.assumeRoleWithWebIdentity(
          roleARN: roleARN, sessionName: session, webIdentityToken: token, durationSeconds: 3600
        ).key
      }
    }
    if let url = containerURL(env) {
      return RefreshingCredentialProvider(name: "container credentials \(url)") {
        try await containerCredentials(url: url, environment: env, http: http)
      }
    }
    if env["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" {
      throw KiamError(
        code: .invalidConfiguration,
        message:
          "no AWS credentials: no environment keys, profile, web identity or container credentials, and AWS_EC2_METADATA_DISABLED=true"
      )
    }
    return RefreshingCredentialProvider(name: "instance metadata \(metadata.endpoint)") {
      try await instanceCredentials(metadata)
    }
  }

  static func containerURL(_ env: [String: String]) -> String? {
    if let full = env["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty { return full }
    if let relative = env["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
      return "http://169.254.170.2" + relative
    }
    return nil
  }

  private struct CredentialDocument: Decodable {
    let AccessKeyId: String
    let SecretAccessKey: String
    let Token: String?
    let Expiration: String?
    let Code: String?
  }

  static func containerCredentials(url: String, environment env: [String: String], http: HTTPClient) async throws
    -> AWSAccessKey
  {
    var request = HTTPClientRequest(url: url)
    request.headers.add(name: "Accept", value: "application/json")
    var authorization = env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]
    if let file = env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"], !file.isEmpty {
      authorization = try? String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    if let authorization, !authorization.isEmpty { request.headers.add(name: "Authorization", value: authorization) }
    let response: HTTPClientResponse
    let body: ByteBuffer
    do {
      response = try await http.execute(request, timeout: .seconds(5))
      body = try await response.body.collect(upTo: 1 << 20)
    } catch {
      throw KiamError(code: .upstream, message: "container credentials \(url)", cause: error)
    }
    guard response.status == .ok else {
      throw KiamError(
        code: .upstream,
        message: "container credentials \(url): HTTP \(response.status.code) \(String(buffer: body).prefix(200))")
    }
    return try decodeDocument(Data(String(buffer: body).utf8), source: url)
  }

  static func instanceCredentials(_ metadata: InstanceMetadataClient) async throws -> AWSAccessKey {
    let listing = try await metadata.get("/latest/meta-data/iam/security-credentials/")
    guard let role = listing.split(whereSeparator: \.isNewline).first.map(String.init), !role.isEmpty else {
      throw KiamError(
        code: .upstream,
        message: "\(metadata.endpoint)/latest/meta-data/iam/security-credentials/: no instance profile role")
    }
    let document = try await metadata.get("/latest/meta-data/iam/security-credentials/\(role)")
    return try decodeDocument(Data(document.utf8), source: "\(metadata.endpoint) instance profile \(role)")
  }

  static func decodeDocument(_ data: Data, source: String) throws -> AWSAccessKey {
    let document: CredentialDocument
    do {
      document = try JSONDecoder().decode(CredentialDocument.self, from: data)
    } catch {
      throw KiamError(code: .upstream, message: "\(source): unreadable credentials document", cause: error)
    }
    if let code = document.Code, code != "Success" {
      throw KiamError(code: .upstream, message: "\(source): credentials document says \(code)")
    }
    return AWSAccessKey(
      accessKeyID: document.AccessKeyId, secretAccessKey: document.SecretAccessKey, sessionToken: document.Token,
      expiration: document.Expiration.flatMap(RFC3339.parse).map(Double.init))
  }
}

/// A profile of the shared credentials (`~/.aws/credentials`) and config (`~/.aws/config`) files.
struct SharedProfile {
  let name: String
  let key: AWSAccessKey

  /// The selected profile's static keys, nil when no file defines them. A profile named by
  /// `AWS_PROFILE` that has no keys is an error.
  static func load(environment env: [String: String]) throws -> SharedProfile? {
    let home = env["HOME"] ?? "/root"
    let explicit = env["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
    let name = explicit ?? "default"
    let credentialsFile = env["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
    let configFile = env["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
    var values: [String: String] = [:]
    if let text = try? String(contentsOfFile: configFile, encoding: .utf8) {
      values.merge(parseINI(text)[name == "default" ? "default" : "profile \(name)"] ?? [:]) { _, new in new }
    }
    if let text = try? String(contentsOfFile: credentialsFile, encoding: .utf8) {
      values.merge(parseINI(text)[name] ?? [:]) { _, new in new }
    }
    guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
      if explicit != nil {
        throw KiamError(
          code: .invalidConfiguration,
          message:
            "AWS_PROFILE \(name): no aws_access_key_id/aws_secret_access_key in \(credentialsFile) or \(configFile)")
      }
      return nil
    }
    return SharedProfile(
      name: name, key: AWSAccessKey(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    )
  }

  /// Sections of an INI file: `[name]` → key/value pairs (`#`/`;` comments).
  static func parseINI(_ text: String) -> [String: [String: String]] {
    var sections: [String: [String: String]] = [:]
    var current: String?
    for raw in text.split(whereSeparator: \.isNewline) {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
      if line.hasPrefix("["), line.hasSuffix("]") {
        current = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces)
        continue
      }
      guard let current, let eq = line.firstIndex(of: "=") else { continue }
      let key = line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()
      let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
      sections[current, default: [:]][key] = value
    }
    return sections
  }
}
