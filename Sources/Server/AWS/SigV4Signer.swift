import Crypto
import KiamShared

/// AWS Signature Version 4 (header form), as botocore's `SigV4Auth` signs non-S3 requests.
///
/// The canonical request is
/// `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED_HEADERS\nhex(sha256(body))`: the path with dot segments
/// and empty segments removed and URI-encoded (`/` and `~` kept, so an already encoded path is
/// encoded again, as AWS expects for every service but S3); query pairs encoded and sorted; every
/// header except `user-agent`, `expect`, `transfer-encoding` and `x-amzn-trace-id`, lower-cased,
/// values trimmed with inner runs of spaces collapsed, duplicates joined with `,`.
public struct SigV4Signer: Sendable {
  /// A request to sign. `path` is as it goes on the wire; `query` holds decoded pairs, encoded
  /// here with AWS's rules (``encodedQuery``), so use that when building the URL.
  public struct Request: Sendable {
    public var method: String
    /// `host` or `host:port` (non-default ports only).
    public var host: String
    public var path: String
    public var query: [(String, String)]
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(
      method: String, host: String, path: String = "/", query: [(String, String)] = [],
      headers: [(String, String)] = [], body: [UInt8] = []
    ) {
      self.method = method
      self.host = host
      self.path = path
      self.query = query
      self.headers = headers
      self.body = body
    }

    /// The query string as sent (AWS-encoded, in the given order).
    public var encodedQuery: String {
      query.map { "\(SigV4Signer.uriEncode($0.0))=\(SigV4Signer.uriEncode($0.1))" }.joined(separator: "&")
    }
  }

  /// The intermediate values of one signature (for tests and debugging).
  public struct Signature: Sendable {
    public let canonicalRequest: String
    public let stringToSign: String
    public let signature: String
    public let authorization: String
  }

  public let service: String
  public let region: String

  public init(service: String, region: String) {
    self.service = service
    self.region = region
  }

  static let unsignedHeaders: Set<String> = [
    "user-agent", "expect", "transfer-encoding", "x-amzn-trace-id", "authorization",
  ]

  /// Signs `request` in place: adds `X-Amz-Date`, `X-Amz-Security-Token` (with a session token)
  /// and `Authorization`.
  /// - Parameter date: Unix seconds of the signature.
  @discardableResult
  public func sign(_ request: inout Request, with key: AWSAccessKey, date: Int64) -> Signature {
    let amzDate = Self.amzDate(date)
    request.headers.removeAll { ["x-amz-date", "authorization", "x-amz-security-token"].contains($0.0.lowercased()) }
    request.headers.append(("X-Amz-Date", amzDate))
    if let token = key.sessionToken, !token.isEmpty {
      request.headers.append(("X-Amz-Security-Token", token))
    }
    let result = signature(for: request, key: key, amzDate: amzDate)
    request.headers.append(("Authorization", result.authorization))
    return result
  }

  /// Computes the signature of a request that already carries its `X-Amz-Date` (and token).
  public func signature(for request: Request, key: AWSAccessKey, amzDate: String) -> Signature {
    // Headers: lower-case names, trimmed values with collapsed spaces, duplicates joined.
    var headers: [String: [String]] = [:]
    var sawHost = false
    for (name, value) in request.headers {
      let lower = name.lowercased()
      if Self.unsignedHeaders.contains(lower) { continue }
      if lower == "host" { sawHost = true }
      headers[lower, default: []].append(Self.collapse(value))
    }
    if !sawHost { headers["host"] = [request.host] }
    let names = headers.keys.sorted()
    let canonicalHeaders = names.map { "\($0):\(headers[$0]!.joined(separator: ","))\n" }.joined()
    let signedHeaders = names.joined(separator: ";")
    let encodedPairs: [(String, String)] = request.query.map { (Self.uriEncode($0.0), Self.uriEncode($0.1)) }
    let sortedPairs = encodedPairs.sorted { (a: (String, String), b: (String, String)) -> Bool in
      a.0 == b.0 ? a.1 < b.1 : a.0 < b.0
    }
    let canonicalQuery = sortedPairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    let payloadHash: String = Self.hex(SHA256.hash(data: request.body))
    let parts: [String] = [
      request.method.uppercased(), Self.canonicalPath(request.path), canonicalQuery, canonicalHeaders, signedHeaders,
      payloadHash,
    ]
    let canonicalRequest = parts.joined(separator: "\n")
    let day = String(amzDate.prefix(8))
    let scope = "\(day)/\(region)/\(service)/aws4_request"
    let canonicalHash: String = Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8)))
    let stringToSign: String = "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + canonicalHash
    var signingKey = SymmetricKey(data: Array("AWS4\(key.secretAccessKey)".utf8))
    for part in [day, region, service, "aws4_request"] {
      signingKey = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: signingKey)))
    }
    let signature = Self.hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey))
    let authorization =
      "AWS4-HMAC-SHA256 Credential=\(key.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
    return Signature(
      canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature, authorization: authorization
    )
  }

  /// `YYYYMMDDTHHMMSSZ`.
  public static func amzDate(_ epochSeconds: Int64) -> String {
    let iso = RFC3339.format(epochSeconds: epochSeconds)  // 2015-08-30T12:36:00Z
    return iso.filter { $0 != "-" && $0 != ":" }
  }

  /// AWS URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX` (upper-case hex).
  public static func uriEncode(_ text: String, keepSlash: Bool = false) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
        out.unicodeScalars.append(Unicode.Scalar(byte))
      case UInt8(ascii: "/") where keepSlash:
        out.append("/")
      default:
        let hex = String(byte, radix: 16, uppercase: true)
        out.append("%" + (hex.count == 1 ? "0" + hex : hex))
      }
    }
    return out
  }

  /// The path with `.`/`..`/empty segments removed (keeping a trailing slash), then encoded.
  static func canonicalPath(_ path: String) -> String {
    guard !path.isEmpty else { return "/" }
    var segments: [Substring] = []
    for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
      if segment == "." { continue }
      if segment == ".." {
        if !segments.isEmpty { segments.removeLast() }
        continue
      }
      segments.append(segment)
    }
    var normalized = "/" + segments.joined(separator: "/")
    if path.hasSuffix("/") && normalized != "/" { normalized += "/" }
    return uriEncode(normalized, keepSlash: true)
  }

  private static func collapse(_ value: String) -> String {
    value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
  }

  static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for byte in digest {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}
