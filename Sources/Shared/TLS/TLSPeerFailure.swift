public import NIOCore
import NIOSSL

/// Why a TLS handshake with a peer failed, as the `reason` label of
/// `kiam_tls_handshake_failures_total` and the cause named in the agent's `/health?deep` and
/// 500 bodies.
public struct TLSPeerFailure: Sendable, Equatable {
  /// `unknown_ca`, `expired`, `not_yet_valid`, `wrong_name`, `wrong_usage`, `no_certificate`,
  /// `bad_certificate` (we rejected the peer's certificate), `rejected_by_peer` (the peer
  /// rejected ours), or `handshake_failed` (anything else).
  public let reason: String
  /// What happened, for people.
  public let message: String

  public init(reason: String, message: String) {
    self.reason = reason
    self.message = message
  }

  /// A failure of our verification of the peer's certificate, from the verifier's text.
  static func rejected(_ detail: String) -> TLSPeerFailure {
    let reason: String
    if detail.contains("no chain to a trusted CA") || detail.contains("unknown issuer") {
      reason = "unknown_ca"
    } else if detail.contains("has expired") {
      reason = "expired"
    } else if detail.contains("not yet valid") {
      reason = "not_yet_valid"
    } else if detail.contains("does not allow extended key usage") {
      reason = "wrong_usage"
    } else if detail.contains("presented no certificate") {
      reason = "no_certificate"
    } else if detail.lowercased().contains("name") || detail.contains("ServerIdentityPolicy") || detail.contains("does not match") {
      reason = "wrong_name"
    } else {
      reason = "bad_certificate"
    }
    return TLSPeerFailure(reason: reason, message: "peer certificate rejected: \(detail)")
  }

  /// A handshake error NIOSSL reported on a connection; nil for the failures our own verifier
  /// has already recorded (BoringSSL reports those as `CERTIFICATE_VERIFY_FAILED`).
  static func handshake(_ error: any Error) -> TLSPeerFailure? {
    let text = String(describing: error)
    guard error is NIOSSLError || error is BoringSSLError else { return nil }
    if text.contains("CERTIFICATE_VERIFY_FAILED") { return nil }
    if let alert = text.firstRange(of: "ALERT_") {
      let name = text[alert.lowerBound...].prefix { $0.isUppercase || $0 == "_" }
      return TLSPeerFailure(
        reason: "rejected_by_peer", message: "the peer rejected the handshake (\(name)): it does not accept our certificate or CA")
    }
    return TLSPeerFailure(reason: "handshake_failed", message: "TLS handshake failed: \(text)")
  }
}

/// Tells a ``TLSMaterialStore`` about handshake errors on its connection (added right after the
/// NIOSSL handler, so it sees what that handler reports).
final class TLSHandshakeErrorRecorder: ChannelInboundHandler, Sendable {
  typealias InboundIn = NIOAny
  private let store: TLSMaterialStore

  init(store: TLSMaterialStore) { self.store = store }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if let failure = TLSPeerFailure.handshake(error) { store.recordPeerFailure(failure) }
    context.fireErrorCaught(error)
  }

  /// A `channelDebuggingCallbacks` callback adding the recorder after the channel's TLS handler.
  static func install(_ store: TLSMaterialStore) -> @Sendable (any Channel) -> EventLoopFuture<Void> {
    { channel in
      channel.eventLoop.makeCompletedFuture {
        let sync = channel.pipeline.syncOperations
        let recorder = TLSHandshakeErrorRecorder(store: store)
        if let client = try? sync.handler(type: NIOSSLClientHandler.self) {
          try sync.addHandler(recorder, position: .after(client))
        } else if let server = try? sync.handler(type: NIOSSLServerHandler.self) {
          try sync.addHandler(recorder, position: .after(server))
        }
      }
    }
  }
}
