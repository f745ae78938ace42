import NIOSSL
import Testing

@testable import KiamShared

/// How TLS failures are named: by the identity check's own words, not any text with "name" in it;
/// a peer's certificate alert is `rejected_by_peer`, other alerts and closes are not.
@Suite struct TLSPeerFailureTests {
  @Test(arguments: [
    ("certificate CN=x rejected: no chain to a trusted CA", "unknown_ca"),
    ("certificate CN=x rejected: RFC5280Policy: Certificate … has expired", "expired"),
    ("certificate CN=x rejected: RFC5280Policy: Certificate … is not yet valid", "not_yet_valid"),
    ("certificate CN=x rejected: certificate CN=x does not allow extended key usage serverAuth", "wrong_usage"),
    ("certificate CN=x rejected: None of the names in SAN extension matched: DNSName(\"other\")", "wrong_name"),
    // The certificate's own SubjectAlternativeNames appear in other failures' texts: not a name problem.
    (
      "certificate CN=x rejected: … extensions: [SubjectAlternativeNames([DNSName(\"a\")])] is not marked as a CA",
      "bad_certificate"
    ),
    ("peer presented no certificate", "no_certificate"),
  ])
  func ourRejectionsAreNamedByTheirCause(_ detail: String, _ reason: String) {
    #expect(TLSPeerFailure.rejected(detail).reason == reason)
  }

  @Test func closesAndOtherAlertsAreNotBlamedOnCertificates() {
    #expect(TLSPeerFailure.handshake(NIOSSLError.uncleanShutdown, afterHandshake: true) == nil)
    #expect(TLSPeerFailure.handshake(NIOSSLError.uncleanShutdown, afterHandshake: false) == nil)
    #expect(
      TLSPeerFailure.handshake(NIOSSLError.handshakeFailed(.sslError([.eofDuringHandshake])), afterHandshake: false)
        == nil)
    struct Other: Error {}
    #expect(TLSPeerFailure.handshake(Other(), afterHandshake: false) == nil)
    // After the handshake, only what is not a certificate alert is ignored.
    #expect(TLSPeerFailure.handshake(NIOSSLError.readInInvalidTLSState, afterHandshake: true) == nil)
    #expect(
      TLSPeerFailure.handshake(NIOSSLError.readInInvalidTLSState, afterHandshake: false)?.reason == "handshake_failed")
  }
}
