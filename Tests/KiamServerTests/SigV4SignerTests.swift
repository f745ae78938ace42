import Foundation
import Testing

@testable import KiamServer

/// The signer against botocore's own signer (fixtures made by scripts/test/make_sigv4_vectors.py)
/// and against signatures published in AWS's sigv4 test suite.
@Suite struct SigV4SignerTests {
  struct Fixture: Decodable {
    let vectors: [Vector]
  }

  struct Vector: Decodable, Sendable, CustomTestStringConvertible {
    let name: String
    let method: String
    let host: String
    let path: String
    let query: [[String]]
    let headers: [[String]]
    let body: String
    let service: String
    let region: String
    let accessKeyID: String
    let secretAccessKey: String
    let sessionToken: String?
    let epochSeconds: Int64
    let canonicalRequest: String
    let stringToSign: String
    let authorization: String
    let amzDate: String
    var testDescription: String { name }
  }

  static let vectors: [Vector] = {
    guard let url = Bundle.module.url(forResource: "sigv4-botocore", withExtension: "json", subdirectory: "Fixtures"),
      let data = try? Data(contentsOf: url), let fixture = try? JSONDecoder().decode(Fixture.self, from: data)
    else { return [] }
    return fixture.vectors
  }()

  @Test func fixturesLoaded() {
    #expect(Self.vectors.count >= 14)
  }

  @Test(arguments: vectors)
  func matchesBotocore(_ vector: Vector) {
    var request = SigV4Signer.Request(
      method: vector.method, host: vector.host, path: vector.path,
      query: vector.query.map { ($0[0], $0[1]) }, headers: vector.headers.map { ($0[0], $0[1]) },
      body: Array(vector.body.utf8))
    let key = AWSAccessKey(
      accessKeyID: vector.accessKeyID, secretAccessKey: vector.secretAccessKey, sessionToken: vector.sessionToken)
    let result = SigV4Signer(service: vector.service, region: vector.region).sign(
      &request, with: key, date: vector.epochSeconds)
    #expect(result.canonicalRequest == vector.canonicalRequest)
    #expect(result.stringToSign == vector.stringToSign)
    #expect(result.authorization == vector.authorization)
    #expect(request.headers.contains { $0.0 == "X-Amz-Date" && $0.1 == vector.amzDate })
    if let token = vector.sessionToken {
      #expect(request.headers.contains { $0.0 == "X-Amz-Security-Token" && $0.1 == token })
    }
  }

  /// Published in AWS's aws-sig-v4-test-suite (AKIDEXAMPLE, 20150830T123600Z, us-east-1, "service").
  @Test(
    arguments: [
      (
        "get-vanilla", "GET", "/", [(String, String)](), [(String, String)](), "",
        "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
      ),
      (
        "get-vanilla-query-order-key-case", "GET", "/", [("Param2", "value2"), ("Param1", "value1")], [], "",
        "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
      ),
      (
        "get-vanilla-query-order-value", "GET", "/", [("Param1", "value2"), ("Param1", "value1")], [], "",
        "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"
      ),
      (
        "get-unreserved", "GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", [], [], "",
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"
      ),
      (
        "get-slashes", "GET", "//example//", [], [], "",
        "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"
      ),
      (
        "get-header-key-duplicate", "GET", "/", [],
        [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")], "",
        "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"
      ),
      (
        "post-x-www-form-urlencoded", "POST", "/", [], [("Content-Type", "application/x-www-form-urlencoded")],
        "Param1=value1",
        "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
      ),
    ] as [(String, String, String, [(String, String)], [(String, String)], String, String)])
  func awsTestSuite(
    _ name: String, _ method: String, _ path: String, _ query: [(String, String)], _ headers: [(String, String)],
    _ body: String, _ expected: String
  ) {
    var request = SigV4Signer.Request(
      method: method, host: "example.amazonaws.com", path: path, query: query, headers: headers, body: Array(body.utf8))
    let key = AWSAccessKey(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    let result = SigV4Signer(service: "service", region: "us-east-1").sign(&request, with: key, date: 1_440_938_160)
    #expect(result.signature == expected, "\(name)")
  }

  @Test func uriEncoding() {
    #expect(SigV4Signer.uriEncode("a b+c/d~e") == "a%20b%2Bc%2Fd~e")
    #expect(SigV4Signer.uriEncode("é") == "%C3%A9")
    #expect(SigV4Signer.uriEncode("a/b", keepSlash: true) == "a/b")
  }
}
