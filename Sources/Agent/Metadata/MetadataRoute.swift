import KiamShared

/// Where a metadata API request goes.
enum MetadataRoute: Equatable {
  case ping
  case health
  /// `PUT /latest/api/token`.
  case token
  /// Go mux-style cleaning or the list path without its slash: 301 to this location.
  case redirect(String)
  /// `…/security-credentials/` (or `-extended/`).
  case roleList(extended: Bool)
  /// `…/security-credentials/<role>` (or `-extended/<role>`), one trailing slash tolerated.
  case credentials(role: String, extended: Bool)
  /// Instance identity credentials, and any other spelling of a credentials or token path
  /// (case, spaces, NULs, `;` parameters…): never served, never passed through.
  case forbiddenCredentials
  /// A target that does not decode cleanly (bad `%` escape, not UTF-8, control bytes): 400.
  case malformed(String)
  /// Anything else: passed to the real metadata service when allow-listed, else blocked.
  case other(path: String)

  /// The `handler` label of the route's metrics (kiam's names).
  var handlerName: String {
    switch self {
    case .roleList: "roleName"
    case .credentials: "credentials"
    case .health: "health"
    default: "proxy"
    }
  }

  /// Parses the request target (path and query).
  static func parse(uri: String) -> MetadataRoute {
    fastCredentialsRoute(uri) ?? parseGeneral(uri: uri)
  }

  private static let credentialsPrefix = Array("/latest/meta-data/iam/security-credentials".utf8)

  /// The role list and credentials paths in their canonical form (what SDKs send on every
  /// credentials refresh), recognised on the raw bytes without allocating; nil for anything
  /// else, which ``parseGeneral(uri:)`` handles (and which gives the same answer for these).
  static func fastCredentialsRoute(_ uri: String) -> MetadataRoute? {
    uri.utf8.withContiguousStorageIfAvailable { bytes -> MetadataRoute? in
      let prefix = credentialsPrefix
      guard bytes.count > prefix.count, bytes.prefix(prefix.count).elementsEqual(prefix) else { return nil }
      var index = prefix.count
      var extended = false
      if bytes[index] == UInt8(ascii: "-") {
        let suffix = "-extended".utf8
        guard bytes.count > index + suffix.count, bytes[index..<(index + suffix.count)].elementsEqual(suffix) else {
          return nil
        }
        index += suffix.count
        extended = true
      }
      guard index < bytes.count, bytes[index] == UInt8(ascii: "/") else { return nil }
      index += 1
      var end = bytes.count
      if end == index { return .roleList(extended: extended) }
      if bytes[end - 1] == UInt8(ascii: "/") { end -= 1 }
      guard end > index else { return nil }
      var onlyDots = true
      for byte in bytes[index..<end] {
        // IAM role names: letters, digits and +=,.@_- (no slash, no escapes, no query).
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
          UInt8(ascii: "0")...UInt8(ascii: "9"),
          UInt8(ascii: "+"), UInt8(ascii: "="), UInt8(ascii: ","), UInt8(ascii: "@"), UInt8(ascii: "_"),
          UInt8(ascii: "-"):
          onlyDots = false
        case UInt8(ascii: "."):
          continue
        default:
          return nil
        }
      }
      if onlyDots { return nil }
      return .credentials(role: String(decoding: bytes[index..<end], as: UTF8.self), extended: extended)
    } ?? nil
  }

  /// Parses any request target: percent-decoding, Go-style cleaning (redirects), every route.
  static func parseGeneral(uri: String) -> MetadataRoute {
    let rawPath: Substring
    let query: Substring?
    if let q = uri.firstIndex(of: "?") {
      rawPath = uri[..<q]
      query = uri[q...]
    } else {
      rawPath = uri[...]
      query = nil
    }
    // The path is checked and forwarded as one decoded text (``PercentEncoding/decodePath(_:)``),
    // so what the allow-list saw is what the metadata service gets.
    guard uri.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
      return .malformed("the request target may hold only visible ASCII characters")
    }
    guard let path = PercentEncoding.decodePath(rawPath) else {
      return .malformed("the path has a bad percent escape, is not UTF-8, or holds control characters")
    }
    if let query, !PercentEncoding.isWellFormed(query) { return .malformed("the query has a bad percent escape") }
    let cleaned = clean(path)
    if cleaned != path { return .redirect(PercentEncoding.encodePath(cleaned) + (query.map(String.init) ?? "")) }
    if path == "/ping" { return .ping }
    if path == "/health" { return .health }
    let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
    let parts = Array(segments)
    if parts.count == 2, parts[1] == "api", path.hasSuffix("/api/token") { return .token }
    if parts.count == 3, parts[1] == "api", parts[2] == "token" { return .token }
    if parts.count >= 3, parts[1] == "meta-data", parts[2] == "identity-credentials" { return .forbiddenCredentials }
    guard parts.count >= 4, parts[1] == "meta-data", parts[2] == "iam",
      parts[3] == "security-credentials" || parts[3] == "security-credentials-extended"
    else {
      return namesCredentialsOrToken(path) ? .forbiddenCredentials : .other(path: path)
    }
    let extended = parts[3] == "security-credentials-extended"
    if parts.count == 4 {
      return .redirect(PercentEncoding.encodePath(path + "/") + (query.map(String.init) ?? ""))
    }
    let prefix = "/" + parts[0...3].joined(separator: "/") + "/"
    var role = String(path.dropFirst(prefix.count))
    if role.isEmpty { return .roleList(extended: extended) }
    if role.hasSuffix("/") { role.removeLast() }
    return .credentials(role: role, extended: extended)
  }

  /// Whether a path that is not one of our routes could still be read as a credentials or token
  /// path by some server: compared without case, white space or NULs, and with and without each
  /// segment's `;parameters`.
  static func namesCredentialsOrToken(_ path: String) -> Bool {
    let folded = String(path.lowercased().unicodeScalars.filter { !$0.properties.isWhitespace && $0 != "\0" })
    let withoutParameters = folded.split(separator: "/", omittingEmptySubsequences: false)
      .map { $0.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? "" }
      .joined(separator: "/")
    return [folded, withoutParameters].contains { text in
      ["security-credentials", "identity-credentials", "api/token"].contains { text.contains($0) }
    }
  }

  /// Go's `path.Clean`, keeping a trailing slash (what gorilla/mux redirects to).
  static func clean(_ path: String) -> String {
    guard !path.isEmpty else { return "/" }
    var out: [Substring] = []
    for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
      if segment == "." { continue }
      if segment == ".." {
        if !out.isEmpty { out.removeLast() }
        continue
      }
      out.append(segment)
    }
    var cleaned = "/" + out.joined(separator: "/")
    if path.hasSuffix("/") && cleaned != "/" { cleaned += "/" }
    return cleaned
  }
}
