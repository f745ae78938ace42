public import X509

/// Which end of a mutually authenticated connection we are; decides the extended key usage our
/// certificate needs and the one we demand from the peer.
public enum TLSRole: Sendable {
  /// A gRPC server: presents serverAuth, requires clientAuth from clients.
  case server
  /// A gRPC client (agent, `kiam health`): presents clientAuth, requires serverAuth from servers.
  case client

  /// The usage our own certificate must allow.
  public var ownUsage: ExtendedKeyUsage.Usage {
    switch self {
    case .server: .serverAuth
    case .client: .clientAuth
    }
  }

  /// The usage the peer's certificate must allow.
  public var peerUsage: ExtendedKeyUsage.Usage {
    switch self {
    case .server: .clientAuth
    case .client: .serverAuth
    }
  }

  /// The metrics side name.
  public var metricsSide: KiamMetrics.TLSSide {
    switch self {
    case .server: .server
    case .client: .client
    }
  }
}
