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
  /// Instance identity credentials: never served, never passed through.
  case forbiddenCredentials
  /// Anything else: passed to the real metadata service when allow-listed, else blocked.
  case other(path: String)

  /// Parses the request target (path and query).
  static func parse(uri: String) -> MetadataRoute {
    let rawPath: Substring
    let query: Substring?
    if let q = uri.firstIndex(of: "?") {
      rawPath = uri[..<q]
      query = uri[q...]
    } else {
      rawPath = uri[...]
      query = nil
    }
    let path = PercentEncoding.decode(rawPath, plusAsSpace: false)
    let cleaned = clean(path)
    if cleaned != path { return .redirect(cleaned + (query.map(String.init) ?? "")) }
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
      return .other(path: path)
    }
    let extended = parts[3] == "security-credentials-extended"
    if parts.count == 4 {
      return .redirect(path + "/" + (query.map(String.init) ?? ""))
    }
    let prefix = "/" + parts[0...3].joined(separator: "/") + "/"
    var role = String(path.dropFirst(prefix.count))
    if role.isEmpty { return .roleList(extended: extended) }
    if role.hasSuffix("/") { role.removeLast() }
    return .credentials(role: role, extended: extended)
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
