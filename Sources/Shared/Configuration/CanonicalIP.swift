#if canImport(Glibc)
  import Glibc
#endif

/// Canonical text form of IP addresses, so `[fd00::1]` from a Go agent, `fd00:0::1` in a pod
/// status and `fd00::1` all name the same key.
public enum CanonicalIP {
  /// The canonical form, or nil when `text` is not an IP address.
  public static func normalize(_ text: String) -> String? {
    var host = Substring(text)
    if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
    if let percent = host.firstIndex(of: "%") { host = host[..<percent] }
    let candidate = String(host)
    // Plain bytes rather than in_addr/in6_addr (see IPAddressText).
    var address = [UInt8](repeating: 0, count: 16)
    if inet_pton(AF_INET, candidate, &address) == 1 {
      return isCanonicalIPv4(candidate) ? candidate : render(AF_INET, &address, size: INET_ADDRSTRLEN)
    }
    if inet_pton(AF_INET6, candidate, &address) == 1 {
      let rendered = render(AF_INET6, &address, size: INET6_ADDRSTRLEN)
      // IPv4-mapped (a dual-stack listener sees IPv4 callers as ::ffff:10.0.0.1).
      if rendered.hasPrefix("::ffff:"), !rendered.dropFirst(7).contains(":") {
        return String(rendered.dropFirst(7))
      }
      return rendered
    }
    return nil
  }

  private static func isCanonicalIPv4(_ text: String) -> Bool {
    // inet_pton already rejected leading zeros and out-of-range parts.
    true
  }

  private static func render(_ family: Int32, _ address: inout [UInt8], size: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: Int(size))
    inet_ntop(family, &address, &buffer, socklen_t(size))
    return String(cString: buffer)
  }
}
