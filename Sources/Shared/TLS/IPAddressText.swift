#if canImport(Glibc)
import Glibc
#endif

/// Recognises textual IP addresses.
public enum IPAddressText {
  /// True for a literal IPv4 or IPv6 address (brackets allowed).
  public static func isIPAddress(_ text: String) -> Bool {
    var host = text
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
  }
}
