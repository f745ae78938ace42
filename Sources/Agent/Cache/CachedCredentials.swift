import KiamShared
import NIOCore
import NIOHTTP1

/// Credentials ready to serve: the JSON bodies, and the whole keep-alive responses carrying them,
/// are encoded once, when they arrive.
struct CachedCredentials: Sendable {
  /// `/security-credentials/<role>` body.
  let document: ByteBuffer
  /// `/security-credentials-extended/<role>` body (with `AccountId` when known).
  let extendedDocument: ByteBuffer
  /// The `200` responses with ``document`` and ``extendedDocument``, prepared for keep-alive.
  let response: HTTPResponse
  let extendedResponse: HTTPResponse
  let accessKeyID: String
  /// Unix seconds.
  let expiration: Int64
  /// When the agent received them (Unix seconds) and their lifetime at that point.
  let receivedAt: Double
  let lifetime: Double
  /// The server's `--min-credential-lifetime` and `--session-refresh` (seconds), when it said.
  let minimumLifetime: Double?
  let refreshMargin: Double?
  var lastRefreshAttempt: Double

  init(
    _ credentials: Kiam_Credentials, roleARN: String?, minimumLifetime: Double? = nil, refreshMargin: Double? = nil,
    now: Double
  ) {
    let expiration = RFC3339.parse(credentials.expiration) ?? Int64(now)
    let lastUpdated =
      credentials.lastUpdated.isEmpty ? RFC3339.format(epochSeconds: Int64(now)) : credentials.lastUpdated
    let account = roleARN.flatMap(Self.accountID)
    document = Self.encode(credentials, expiration: expiration, lastUpdated: lastUpdated, accountID: nil)
    extendedDocument = Self.encode(credentials, expiration: expiration, lastUpdated: lastUpdated, accountID: account)
    response = Self.prepared(document)
    extendedResponse = Self.prepared(extendedDocument)
    accessKeyID = credentials.accessKeyID
    self.expiration = expiration
    receivedAt = now
    lifetime = max(0, Double(expiration) - now)
    self.minimumLifetime = minimumLifetime
    self.refreshMargin = refreshMargin
    lastRefreshAttempt = now
  }

  /// Credentials as the server issued them, with what it said about them.
  init(_ issued: ServerCredentials, now: Double) {
    self.init(
      issued.credentials, roleARN: issued.roleARN, minimumLifetime: issued.minimumLifetime,
      refreshMargin: issued.refreshMargin, now: now)
  }

  func remaining(now: Double) -> Double { Double(expiration) - now }

  /// Served without asking the server while this much validity is left: the server's floor, the
  /// same every served credential keeps (README), or with a server that does not say (Go kiam),
  /// a quarter of the lifetime up to 15 minutes (SDKs refresh with less than that left).
  var serveFloor: Double { minimumLifetime ?? min(15 * 60, lifetime / 4) }

  /// Refreshed in the background below this much validity: before the floor, so warm requests
  /// never reach it while a server answers, and half the server's margin after the server itself
  /// refreshed (`--session-refresh`, 5 m, before the floor), so the answer is the next credentials.
  var refreshBelow: Double {
    guard let minimumLifetime else { return min(30 * 60, lifetime / 2) }
    return minimumLifetime + (refreshMargin ?? 0) / 2
  }

  /// The IMDS credentials document: `Code`, `LastUpdated`, `Type`, `AccessKeyId`,
  /// `SecretAccessKey`, `Token`, `Expiration` (`YYYY-MM-DDTHH:MM:SSZ` UTC), plus `AccountId` on
  /// the extended path.
  static func encode(_ c: Kiam_Credentials, expiration: Int64, lastUpdated: String, accountID: String?) -> ByteBuffer {
    var json = "{\"Code\":\"Success\",\"LastUpdated\":"
    JSON.appendString(lastUpdated, to: &json)
    json += ",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":"
    JSON.appendString(c.accessKeyID, to: &json)
    json += ",\"SecretAccessKey\":"
    JSON.appendString(c.secretAccessKey, to: &json)
    json += ",\"Token\":"
    JSON.appendString(c.token, to: &json)
    json += ",\"Expiration\":"
    JSON.appendString(RFC3339.format(epochSeconds: expiration), to: &json)
    if let accountID {
      json += ",\"AccountId\":"
      JSON.appendString(accountID, to: &json)
    }
    json += "}\n"
    return ByteBuffer(string: json)
  }

  private static func prepared(_ document: ByteBuffer) -> HTTPResponse {
    HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: document).prepared()
  }

  static func accountID(_ arn: String) -> String? {
    let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
    guard parts.count == 6, !parts[4].isEmpty else { return nil }
    return String(parts[4])
  }
}
