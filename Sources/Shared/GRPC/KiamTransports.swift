public import GRPCCore
public import GRPCNIOTransportHTTP2

#if canImport(Glibc)
  import Glibc
#endif

/// Builds the gRPC transports kiam uses: HTTP/2 over mutual TLS from a ``TLSMaterialStore``.
public enum KiamTransports {
  /// A server transport listening on `bind`.
  ///
  /// Clients must present a certificate from our CA that allows clientAuth; the certificate and
  /// CA are taken from `store` at every handshake, so rotated files apply to new connections.
  public static func server(
    bind: HostPort, store: TLSMaterialStore, settings: GRPCConnectionSettings
  ) throws -> HTTP2ServerTransport.Posix {
    let material = store.material
    let address = try resolveBindAddress(bind)
    let security = HTTP2ServerTransport.Posix.TransportSecurity.mTLS(
      certificateChain: [.bytes(material.certificatePEM, format: .pem)],
      privateKey: .bytes(material.keyPEM, format: .pem)
    ) { tls in
      tls.trustRoots = .certificates(material.caCertificates.compactMap { try? .bytes($0.derBytes(), format: .der) })
      tls.clientCertificateVerification = .noHostnameVerification
      tls.certificateReloader = store
      tls.customVerificationCallback = store.verificationCallback(serverName: nil)
    }
    var config = HTTP2ServerTransport.Posix.Config.defaults
    config.channelDebuggingCallbacks.onAcceptTCPConnection = TLSHandshakeErrorRecorder.install(store)
    config.connection.maxAge = settings.maxConnectionAge
    config.connection.maxGraceTime = settings.maxConnectionAgeGrace
    config.connection.maxIdleTime = settings.maxConnectionIdle
    config.connection.keepalive = .init(
      time: settings.keepaliveTime,
      timeout: settings.keepaliveTimeout,
      // Tolerate agents that ping idle connections (Go kiam's server did not, and dropped them).
      clientBehavior: .init(minPingIntervalWithoutCalls: .seconds(5), allowWithoutCalls: true))
    return HTTP2ServerTransport.Posix(address: address, transportSecurity: security, config: config)
  }

  /// A client transport to `server`, the server certificate checked against `server.host`.
  /// - Parameters:
  ///   - target: Overrides how `server` is resolved (the agent resolves every server address).
  ///   - resolvers: The registry knowing `target`'s resolver.
  public static func client(
    server: HostPort, store: TLSMaterialStore, settings: GRPCConnectionSettings,
    target customTarget: (any ResolvableTarget)? = nil, resolvers: NameResolverRegistry = .defaults
  ) throws -> HTTP2ClientTransport.Posix {
    let material = store.material
    let security = HTTP2ClientTransport.Posix.TransportSecurity.mTLS(
      certificateChain: [.bytes(material.certificatePEM, format: .pem)],
      privateKey: .bytes(material.keyPEM, format: .pem)
    ) { tls in
      tls.trustRoots = .certificates(material.caCertificates.compactMap { try? .bytes($0.derBytes(), format: .der) })
      tls.serverCertificateVerification = .fullVerification
      tls.certificateReloader = store
      tls.customVerificationCallback = store.verificationCallback(serverName: server.host)
    }
    var config = HTTP2ClientTransport.Posix.Config.defaults
    config.channelDebuggingCallbacks.onCreateTCPConnection = TLSHandshakeErrorRecorder.install(store)
    config.connection.keepalive = .init(
      time: settings.keepaliveTime, timeout: settings.keepaliveTimeout,
      allowWithoutCalls: settings.permitWithoutStream)
    config.backoff = .init(initial: .milliseconds(100), max: .seconds(5), multiplier: 1.6, jitter: 0.2)
    let host = server.host.isEmpty ? "localhost" : server.host
    let target: any ResolvableTarget
    if let customTarget {
      target = customTarget
    } else if IPAddressText.isIPAddress(host) {
      target = host.contains(":") ? .ipv6(host: host, port: server.port) : .ipv4(host: host, port: server.port)
    } else {
      target = .dns(host: host, port: server.port)
    }
    return try HTTP2ClientTransport.Posix(
      target: target,
      transportSecurity: security,
      config: config,
      resolverRegistry: resolvers,
      serviceConfig: ServiceConfig(loadBalancingConfig: [.roundRobin])
    )
  }

  /// Turns `--bind` (`0.0.0.0:443`, `localhost:9610`, `:443`) into a listen address.
  static func resolveBindAddress(_ bind: HostPort) throws -> GRPCNIOTransportHTTP2.SocketAddress {
    if bind.host.isEmpty || bind.host == "::" {
      return .ipv6(host: "::", port: bind.port)
    }
    if IPAddressText.isIPAddress(bind.host) {
      return bind.host.contains(":") ? .ipv6(host: bind.host, port: bind.port) : .ipv4(host: bind.host, port: bind.port)
    }
    // A name: take the first address it resolves to (`localhost` → 127.0.0.1).
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_family = AF_UNSPEC
    var result: UnsafeMutablePointer<addrinfo>?
    guard getaddrinfo(bind.host, nil, &hints, &result) == 0, let first = result else {
      throw KiamError(code: .invalidConfiguration, message: "--bind \(bind): cannot resolve host \"\(bind.host)\"")
    }
    defer { freeaddrinfo(result) }
    var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
    if first.pointee.ai_family == AF_INET6 {
      var addr = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
      inet_ntop(AF_INET6, &addr, &buffer, socklen_t(buffer.count))
      return .ipv6(host: String(cString: buffer), port: bind.port)
    }
    var addr = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
    inet_ntop(AF_INET, &addr, &buffer, socklen_t(buffer.count))
    return .ipv4(host: String(cString: buffer), port: bind.port)
  }
}
