import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct CredentialsDocumentTests {
  @Test func documentShape() throws {
    let credentials = Kiam_Credentials.with {
      $0.code = "Success"
      $0.type = "AWS-HMAC"
      $0.accessKeyID = "ASIA123"
      $0.secretAccessKey = "sec\"ret"
      $0.token = "tok"
      $0.expiration = "2026-11-23T06:00:00Z"
      $0.lastUpdated = "2026-11-23T05:00:00Z"
    }
    let cached = CachedCredentials(credentials, roleARN: "arn:aws:iam::123456789012:role/app", now: 1_795_410_000)
    let text = String(buffer: cached.document)
    #expect(text.hasSuffix("}\n"))
    #expect(
      text.hasPrefix(
        "{\"Code\":\"Success\",\"LastUpdated\":\"2026-11-23T05:00:00Z\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\""))
    let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String]
    #expect(object?["SecretAccessKey"] == "sec\"ret")
    #expect(object?["Expiration"] == "2026-11-23T06:00:00Z")
    #expect(object?["AccountId"] == nil)
    let extended =
      try JSONSerialization.jsonObject(with: Data(String(buffer: cached.extendedDocument).utf8)) as? [String: String]
    #expect(extended?["AccountId"] == "123456789012")
    #expect(cached.expiration == 1_795_413_600)
  }
}
