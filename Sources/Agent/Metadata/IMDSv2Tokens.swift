import Crypto
import Foundation
import KiamShared
import Synchronization

/// IMDSv2 session tokens issued by the agent itself: `PUT /latest/api/token` returns a token
/// bound to the caller's IP and an expiry, authenticated with an HMAC key.
///
/// The key is derived (HKDF-SHA256) from the agent's TLS private key (`--key`) and the node's
/// address (`--host`), so it is the same for every agent process on the node: tokens survive an
/// agent restart or upgrade, and old and new agents accept each other's tokens during a rollout.
/// (A key made at each start turned every token an SDK held into a 401 after a restart; Go SDK v1
/// fails the call, Ruby stops refreshing for minutes.) When the key file is rotated, the previous
/// key is still accepted for the longest token lifetime (6 h). The threat model is in
/// docs/security.md: whoever can read the agent's key can mint tokens, and can already
/// impersonate the agent to the server.
final class IMDSv2Tokens: Sendable {
  /// Accepted TTLs, as EC2's metadata service.
  static let ttlRange = 1...21600

  /// The TTL of an `X-aws-ec2-metadata-token-ttl-seconds` header, or nil: as EC2, digits only
  /// (no sign, no spaces inside, no leading zero) and within ``ttlRange``.
  static func ttl(header text: String) -> Int? {
    let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
    let bytes = Array(text.utf8.drop(while: blank).reversed().drop(while: blank).reversed())
    guard (1...5).contains(bytes.count), bytes[0] != UInt8(ascii: "0"),
      bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
      let value = Int(String(decoding: bytes, as: UTF8.self)), ttlRange.contains(value)
    else { return nil }
    return value
  }

  private struct Keys {
    /// What the key was derived from (the TLS material's fingerprint), nil for a fixed key.
    var source: SHA256Digest?
    var current: SymmetricKey
    var previous: SymmetricKey?
    /// Unix seconds until which ``previous`` is accepted.
    var previousUntil: Int64 = 0
  }

  private let keys: Mutex<Keys>
  private let store: TLSMaterialStore?
  private let host: String

  /// Tokens under a fixed key (tests).
  init(key: SymmetricKey = SymmetricKey(size: .bits256)) {
    keys = Mutex(Keys(source: nil, current: key))
    store = nil
    host = ""
  }

  /// Tokens under the key derived from `store`'s private key and the node's address.
  init(store: TLSMaterialStore, host: String) {
    let material = store.material
    keys = Mutex(Keys(source: material.fingerprint, current: Self.derive(keyPEM: material.keyPEM, host: host)))
    self.store = store
    self.host = host
  }

  /// The HMAC key for a node: HKDF-SHA256 of the agent's private key, salted and bound to `host`.
  static func derive(keyPEM: [UInt8], host: String) -> SymmetricKey {
    HKDF<SHA256>.deriveKey(
      inputKeyMaterial: SymmetricKey(data: keyPEM), salt: Array("kiam IMDSv2 session tokens".utf8),
      info: Array("v1 \(host)".utf8), outputByteCount: 32)
  }

  /// The keys in use, after following a rotation of the TLS files.
  private func current(now: Int64) -> (key: SymmetricKey, previous: SymmetricKey?) {
    keys.withLock { keys in
      // Read under this lock: a caller holding older material must not rotate back to it.
      if let material = store?.material, let source = keys.source, source != material.fingerprint {
        let next = Self.derive(keyPEM: material.keyPEM, host: host)
        keys.source = material.fingerprint
        if next != keys.current {
          keys.previous = keys.current
          keys.previousUntil = now + Int64(Self.ttlRange.upperBound)
          keys.current = next
        }
      }
      return (keys.current, now < keys.previousUntil ? keys.previous : nil)
    }
  }

  func issue(ip: String, ttl: Int, now: Int64) -> String {
    let payload = "\(ip)|\(now + Int64(ttl))"
    let mac = HMAC<SHA256>.authenticationCode(for: Array(payload.utf8), using: current(now: now).key)
    return "kiam1." + Self.base64url(Array(payload.utf8)) + "." + Self.base64url(Array(mac))
  }

  enum Check: String, Equatable {
    case valid
    /// Not a token of this node's agents (malformed, forged, or under a key no longer accepted).
    case invalid
    case expired
    /// Issued to another IP.
    case wrongCaller = "wrong_caller"
  }

  func check(_ token: String, ip: String, now: Int64) -> Check {
    let parts = token.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 3, parts[0] == "kiam1", let payload = Self.unbase64url(parts[1]),
      let mac = Self.unbase64url(parts[2])
    else { return .invalid }
    let (key, previous) = current(now: now)
    guard
      HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: key)
        || previous.map({ HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: $0) }) == true
    else { return .invalid }
    let text = String(decoding: payload, as: UTF8.self)
    guard let bar = text.lastIndex(of: "|"), let expiry = Int64(text[text.index(after: bar)...]) else {
      return .invalid
    }
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
