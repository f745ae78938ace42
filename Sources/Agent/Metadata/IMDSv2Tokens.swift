import Crypto
import Foundation
import KiamShared

/// IMDSv2 session tokens issued by the agent itself: `PUT /latest/api/token` returns a token
/// bound to the caller's IP and an expiry, authenticated with an HMAC key that lives only in this
/// process (tokens do not survive an agent restart; SDKs then get 401 and fetch a new one).
struct IMDSv2Tokens: Sendable {
  private let key: SymmetricKey

  init(key: SymmetricKey = SymmetricKey(size: .bits256)) {
    self.key = key
  }

  /// Accepted TTLs, as EC2's metadata service.
  static let ttlRange = 1...21600

  func issue(ip: String, ttl: Int, now: Int64) -> String {
    let payload = "\(ip)|\(now + Int64(ttl))"
    let mac = HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: key)
    return "kiam1." + Self.base64url(Array(payload.utf8)) + "." + Self.base64url(Array(mac))
  }

  enum Check: Equatable {
    case valid
    case invalid
    case expired
    case wrongCaller
  }

  func check(_ token: String, ip: String, now: Int64) -> Check {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0] == "kiam1", let payload = Self.unbase64url(parts[1]), let mac = Self.unbase64url(parts[2])
    else { return .invalid }
    guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key) else { return .invalid }
    let text = String(decoding: payload, as: UTF8.self)
    guard let bar = text.lastIndex(of: "|"), let expiry = Int64(text[text.index(after: bar)...]) else { return .invalid }
    guard text[..<bar] == ip else { return .wrongCaller }
    return expiry > now ? .valid : .expired
  }

  static func base64url(_ bytes: [UInt8]) -> String {
    Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
      .replacingOccurrences(of: "=", with: "")
  }

  static func unbase64url(_ text: Substring) -> [UInt8]? {
    var base = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while base.count % 4 != 0 { base += "=" }
    return Data(base64Encoded: base).map(Array.init)
  }
}
