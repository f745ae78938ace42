import GRPCCore
import GRPCNIOTransportHTTP2
import KiamShared
import NIOPosix
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A `--server-address` resolved through DNS to every server (a headless Service), one endpoint
/// per address so round-robin spreads calls over all servers. Re-resolved periodically, so new
/// servers are found without waiting for a connection to fail (Go kiam relied on the server's
/// 15 min connection age for that).
struct ServerAddressTarget: ResolvableTarget, Sendable {
  var host: String
  var port: Int
  var refreshInterval: Duration
  /// Host name to addresses (sorted); getaddrinfo unless a test says otherwise.
  var lookup: @Sendable (String) async -> [String] = ServerAddressResolutions.Iterator.lookup(host:)
}

struct ServerAddressResolverFactory: NameResolverFactory {
  typealias Target = ServerAddressTarget

  func resolver(for target: ServerAddressTarget) -> NameResolver {
    NameResolver(
      names: RPCAsyncSequence(wrapping: ServerAddressResolutions(target: target)), updateMode: .push,
      authority: Self.authority(host: target.host, port: target.port))
  }

  /// The `:authority`, which the transport also sends as the TLS server name (SNI). An IP
  /// literal is not a valid server name (RFC 6066 §3): given one, NIOSSL refuses to create the
  /// TLS handler and the connection is abandoned before its first packet, so
  /// `--server-address=127.0.0.1:443` never dialled. For IP literals the transport derives the
  /// authority from the address itself and sends no SNI; the certificate is still checked
  /// against the IP (``TLSMaterialStore/verificationCallback(serverName:)``).
  static func authority(host: String, port: Int) -> String? {
    IPAddressText.isIPAddress(host) ? nil : HostPort.display(host: host, port: port)
  }
}

/// Resolves now, then again every `refreshInterval` (sooner while resolution fails), yielding only
/// when the set of addresses changes.
struct ServerAddressResolutions: AsyncSequence, Sendable {
  typealias Element = NameResolutionResult
  typealias Failure = any Error
  let target: ServerAddressTarget

  func makeAsyncIterator() -> Iterator { Iterator(target: target) }

  struct Iterator: AsyncIteratorProtocol {
    let target: ServerAddressTarget
    /// The addresses last yielded; nil until a resolution succeeded.
    var last: [String]?
    /// Failed lookups in a row; kept across calls so a name that does not resolve (DNS not up
    /// yet at node boot, a typo) is retried with backoff, never in a tight loop.
    var failures = 0
    /// Whether the "nothing to connect to yet" result was yielded.
    var announcedEmpty = false

    init(target: ServerAddressTarget) { self.target = target }

    mutating func next() async throws -> NameResolutionResult? {
      while true {
        if let delay = Self.delay(failures: failures, resolved: last != nil, refresh: target.refreshInterval) {
          try await Task.sleep(for: delay)
        }
        try Task.checkCancellation()
        let addresses = await target.lookup(target.host)
        if addresses.isEmpty {
          failures += 1
          if last == nil && !announcedEmpty {
            // Let the client know there is nothing to connect to yet (calls fail fast, no hang).
            announcedEmpty = true
            return NameResolutionResult(endpoints: [], serviceConfig: nil)
          }
          continue
        }
        failures = 0
        if addresses == last { continue }
        last = addresses
        let endpoints = addresses.map { address -> Endpoint in
          address.contains(":")
            ? Endpoint(addresses: [.ipv6(host: address, port: target.port)])
            : Endpoint(addresses: [.ipv4(host: address, port: target.port)])
        }
        return NameResolutionResult(endpoints: endpoints, serviceConfig: nil)
      }
    }

    /// How long to wait before the next lookup: none for the very first, growing from 400 ms to
    /// 5 s after failures, `refresh` once resolved.
    static func delay(failures: Int, resolved: Bool, refresh: Duration) -> Duration? {
      if failures > 0 { return .milliseconds(Swift.min(5000, 200 << Swift.min(failures, 5))) }
      return resolved ? refresh : nil
    }

    /// getaddrinfo on NIO's thread pool (it blocks).
    static func lookup(host: String) async -> [String] {
      if IPAddressText.isIPAddress(host) { return [host] }
      return (try? await NIOThreadPool.singleton.runIfActive { Self.getaddrinfo(host) }) ?? []
    }

    static func getaddrinfo(_ host: String) -> [String] {
      var hints = addrinfo()
      hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
      hints.ai_family = AF_UNSPEC
      var result: UnsafeMutablePointer<addrinfo>?
      guard Glibc.getaddrinfo(host, nil, &hints, &result) == 0 else { return [] }
      defer { freeaddrinfo(result) }
      var out = Set<String>()
      var cursor = result
      while let entry = cursor {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        if entry.pointee.ai_family == AF_INET {
          var addr = entry.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
          inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
          out.insert(String(cString: buffer))
        } else if entry.pointee.ai_family == AF_INET6 {
          var addr = entry.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
            $0.pointee.sin6_addr
          }
          inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
          out.insert(String(cString: buffer))
        }
        cursor = entry.pointee.ai_next
      }
      return out.sorted()
    }
  }
}
