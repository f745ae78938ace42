/// Just enough XML for AWS Query-protocol responses: find elements by local name and read their
/// text, with entities decoded. Namespaces and attributes are ignored.
struct MiniXML {
  let text: String

  /// The decoded text of the first element named `name` (inside `within`, when given).
  func first(_ name: String, within parent: String? = nil) -> String? {
    var scope = text[...]
    if let parent {
      guard let inner = Self.element(parent, in: scope) else { return nil }
      scope = inner
    }
    return Self.element(name, in: scope).map { Self.decodeEntities(String($0)) }
  }

  /// The raw content of the first `<name ...>…</name>` in `text` (prefixes like `a:name` allowed).
  private static func element(_ name: String, in text: Substring) -> Substring? {
    var search = text.startIndex
    while let open = text[search...].firstIndex(of: "<") {
      guard let close = text[open...].firstIndex(of: ">") else { return nil }
      var tag = text[text.index(after: open)..<close]
      search = text.index(after: close)
      if tag.hasPrefix("/") || tag.hasPrefix("?") || tag.hasPrefix("!") { continue }
      let selfClosing = tag.hasSuffix("/")
      if selfClosing { tag = tag.dropLast() }
      let tagName = tag.prefix { !$0.isWhitespace }
      let local = tagName.split(separator: ":").last ?? tagName
      guard local == name else { continue }
      if selfClosing { return text[search..<search] }
      // Find the matching close tag (same name, accounting for nesting of that name).
      var depth = 1
      var cursor = search
      while let next = text[cursor...].firstIndex(of: "<") {
        guard let end = text[next...].firstIndex(of: ">") else { return nil }
        let inner = text[text.index(after: next)..<end]
        cursor = text.index(after: end)
        let isClose = inner.hasPrefix("/")
        let innerName = (isClose ? inner.dropFirst() : inner).prefix { !$0.isWhitespace && $0 != "/" }
        let innerLocal = innerName.split(separator: ":").last ?? innerName
        guard innerLocal == name else { continue }
        if isClose {
          depth -= 1
          if depth == 0 { return text[search..<next] }
        } else if !inner.hasSuffix("/") {
          depth += 1
        }
      }
      return nil
    }
    return nil
  }

  static func decodeEntities(_ text: String) -> String {
    guard text.contains("&") else { return text }
    var out = ""
    var rest = text[...]
    while let amp = rest.firstIndex(of: "&") {
      out += rest[..<amp]
      guard let semi = rest[amp...].firstIndex(of: ";") else {
        out += rest[amp...]
        return out
      }
      let entity = rest[rest.index(after: amp)..<semi]
      switch entity {
      case "amp": out += "&"
      case "lt": out += "<"
      case "gt": out += ">"
      case "quot": out += "\""
      case "apos": out += "'"
      default:
        if entity.hasPrefix("#x"), let code = UInt32(entity.dropFirst(2), radix: 16), let scalar = Unicode.Scalar(code)
        {
          out.unicodeScalars.append(scalar)
        } else if entity.hasPrefix("#"), let code = UInt32(entity.dropFirst()), let scalar = Unicode.Scalar(code) {
          out.unicodeScalars.append(scalar)
        } else {
          out += rest[amp...semi]
        }
      }
      rest = rest[rest.index(after: semi)...]
    }
    out += rest
    return out
  }
}
