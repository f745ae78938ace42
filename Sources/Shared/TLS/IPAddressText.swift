#if canImport(Glibc)
  import Glibc
#endif

/// Recognises textual IP addresses.
public enum IPAddressText {
  /// True for a literal IPv4 or IPv6 address (brackets allowed).
  public static func isIPAddress(_ text: String) -> Bool {
    var host = text
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    // Plain bytes rather than in_addr/in6_addr: which clang module owns their initialisers
    // depends on the build order (a clean build failed on it, MemberImportVisibility).
    var address = [UInt8](repeating: 0, count: 16)
    return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
  }
}
