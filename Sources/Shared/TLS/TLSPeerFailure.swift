public import NIOCore
import NIOSSL
import NIOTLS

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
    } else if ["None of the names in SAN extension matched", "does not match expected hostname", "No SAN extension"]
      .contains(where: { detail.contains($0) })
    {
      reason = "wrong_name"
    } else {
      reason = "bad_certificate"
    }
    return TLSPeerFailure(reason: reason, message: "peer certificate rejected: \(detail)")
  }

  /// The TLS alerts by which a peer says it refuses our certificate.
  static let certificateAlerts: Set<String> = [
    "ALERT_BAD_CERTIFICATE", "ALERT_UNSUPPORTED_CERTIFICATE", "ALERT_CERTIFICATE_REVOKED", "ALERT_CERTIFICATE_EXPIRED",
    "ALERT_CERTIFICATE_UNKNOWN", "ALERT_UNKNOWN_CA", "ALERT_ACCESS_DENIED", "ALERT_CERTIFICATE_REQUIRED",
  ]

  /// A TLS error NIOSSL reported on a connection, or nil when it is not a handshake failure worth
  /// naming: what our own verifier already recorded (BoringSSL reports it as
  /// `CERTIFICATE_VERIFY_FAILED`), a peer that closed without a TLS goodbye or before the
  /// handshake (probes, port scans), and, once the handshake completed, anything but a peer's
  /// certificate alert (TLS 1.3 servers refuse a client certificate after the client is done).
  static func handshake(_ error: any Error, afterHandshake: Bool) -> TLSPeerFailure? {
    if let nio = error as? NIOSSLError {
      switch nio {
      case .uncleanShutdown: return nil
      default: break
      }
    } else if !(error is BoringSSLError) {
      return nil
    }
    let text = String(describing: error)
    if text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("EOF during handshake") { return nil }
    if text.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") {
      return TLSPeerFailure(
        reason: "no_certificate", message: "peer certificate rejected: the peer presented no certificate")
    }
    if let start = text.firstRange(of: "ALERT_") {
      let alert = String(text[start.lowerBound...].prefix { $0.isUppercase || $0 == "_" })
      if certificateAlerts.contains(alert) {
        return TLSPeerFailure(
          reason: "rejected_by_peer",
          message: "the peer refused our certificate (\(alert)): it does not trust our CA or certificate")
      }
      return afterHandshake
        ? nil : TLSPeerFailure(reason: "handshake_failed", message: "TLS handshake failed (\(alert)): \(text)")
    }
    return afterHandshake ? nil : TLSPeerFailure(reason: "handshake_failed", message: "TLS handshake failed: \(text)")
  }
}

/// Tells a ``TLSMaterialStore`` about handshake errors on its connection (added right after the
/// NIOSSL handler, so it sees what that handler reports).
final class TLSHandshakeErrorRecorder: ChannelInboundHandler {
  typealias InboundIn = NIOAny
  private let store: TLSMaterialStore
  private var handshakeCompleted = false

  init(store: TLSMaterialStore) { self.store = store }

  func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
    if case .handshakeCompleted = event as? TLSUserEvent { handshakeCompleted = true }
    context.fireUserInboundEventTriggered(event)
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    if let failure = TLSPeerFailure.handshake(error, afterHandshake: handshakeCompleted) {
      store.recordPeerFailure(failure)
    }
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
