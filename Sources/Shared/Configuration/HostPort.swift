/// A `host:port` address as kiam's flags take it (`kiam-server:443`, `:9620`, `[::1]:443`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
  /// The host, without brackets; empty means every address.
  public var host: String
  /// The port.
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// Parses `host:port` like Go's `net.SplitHostPort`.
  /// - Throws: ``KiamError`` when the port is missing or invalid.
  public static func parse(_ text: String) throws -> HostPort {
    func fail(_ why: String) -> KiamError {
      KiamError(code: .invalidConfiguration, message: "address \(text): \(why)")
    }
    let host: Substring
    let portText: Substring
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else { throw fail("missing ']' in address") }
      host = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":") else { throw fail("missing port in address") }
      portText = rest.dropFirst()
    } else {
      guard let colon = text.lastIndex(of: ":") else { throw fail("missing port in address") }
      host = text[..<colon]
      if host.contains(":") { throw fail("too many colons in address") }
      portText = text[text.index(after: colon)...]
    }
    guard let port = Int(portText), (0...65535).contains(port) else {
      throw fail(portText.isEmpty ? "missing port in address" : "invalid port \"\(portText)\"")
    }
    return HostPort(host: String(host), port: port)
  }

  public var description: String { HostPort.display(host: host, port: port) }

  /// Renders host and port, bracketing IPv6 literals.
  public static func display(host: String, port: Int) -> String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }
}
