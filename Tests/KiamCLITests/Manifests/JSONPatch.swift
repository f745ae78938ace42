import KiamTestSupport

/// The JSON 6902 operations kustomize patches use here (`add`, `replace`, `remove`) on parsed
/// YAML, with JSON Pointer paths (`-` appends to an array).
enum JSONPatch {
  static func apply(_ operation: Object, to document: Any, context: String) throws -> Any {
    guard let op = operation["op"] as? String, let path = operation["path"] as? String, path.hasPrefix("/") else {
      throw TestSupportError("\(context): patch operation needs op and an absolute path")
    }
    let tokens = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map {
      $0.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
    }
    switch op {
    case "add", "replace":
      guard let value = operation["value"] else { throw TestSupportError("\(context): \(op) \(path) has no value") }
      return try set(
        value, at: tokens[...], in: document, replace: op == "replace", context: "\(context) \(op) \(path)")
    case "remove":
      return try set(nil, at: tokens[...], in: document, replace: true, context: "\(context) remove \(path)")
    default:
      throw TestSupportError("\(context): op \(op) is not supported by the test renderer")
    }
  }

  private static func set(_ value: Any?, at tokens: ArraySlice<String>, in node: Any, replace: Bool, context: String)
    throws -> Any
  {
    guard let token = tokens.first else { throw TestSupportError("\(context): empty path") }
    let rest = tokens.dropFirst()
    if var map = node as? Object {
      if rest.isEmpty {
        if replace && map[token] == nil { throw TestSupportError("\(context): nothing to replace at \(token)") }
        map[token] = value
        return map
      }
      guard let child = map[token] else { throw TestSupportError("\(context): no \(token)") }
      map[token] = try set(value, at: rest, in: child, replace: replace, context: context)
      return map
    }
    if var array = node as? [Any] {
      if token == "-" && rest.isEmpty && !replace, let value {
        array.append(value)
        return array
      }
      guard let index = Int(token), index >= 0, index < array.count + (rest.isEmpty && !replace ? 1 : 0) else {
        throw TestSupportError("\(context): index \(token) out of range")
      }
      if rest.isEmpty {
        if let value {
          if replace { array[index] = value } else { array.insert(value, at: index) }
        } else {
          array.remove(at: index)
        }
        return array
      }
      array[index] = try set(value, at: rest, in: array[index], replace: replace, context: context)
      return array
    }
    throw TestSupportError("\(context): \(token) is below a scalar")
  }
}
