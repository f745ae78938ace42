public import Logging
public import NIOCertificateReloading
public import NIOCore
public import NIOSSL
import Prometheus
import SwiftASN1
import Synchronization
public import X509

/// The current TLS material of a process, swapped atomically when the files change.
///
/// It is the `CertificateReloader` the gRPC transports ask for our chain and key at every new
/// handshake, and it verifies peers itself (``verificationCallback(serverName:)``) so that a
/// rotated CA bundle takes effect without restarting listeners:
/// - only the CA from `--ca` is trusted, never system roots;
/// - the peer's leaf must allow the opposite extended key usage (clientAuth for clients of a
///   server, serverAuth for servers);
/// - a client also checks the server certificate against the host it dialled.
public final class TLSMaterialStore: CertificateReloader, Sendable {
  /// The files this store reads.
  public let files: TLSFiles
  /// Our end of the connection.
  public let role: TLSRole
  private let state: Mutex<TLSMaterial>
  /// The files as last read, once old enough to be trusted (see ``TLSFilesSignature``).
  private let checked: Mutex<TLSFilesSignature?>
  private let readCount = Atomic<Int>(0)
  private let gauges: KiamMetrics.TLSGauges?
  private let metrics: KiamMetrics?
  private let logger: Logger
  /// Whether our own chain failed to verify, and the last handshake failure with a peer since
  /// the last success (the verify-error gauge is 1 while either holds).
  private let failures = Mutex<(own: Bool, peer: (failure: TLSPeerFailure, at: ContinuousClock.Instant)?)>((false, nil))

  /// The outcome of ``reload()``.
  public enum ReloadOutcome: Sendable {
    case unchanged
    case reloaded
    case failed(KiamError)
  }

  /// Loads the files once.
  /// - Throws: ``KiamError`` when a file is missing, unreadable or invalid.
  public init(files: TLSFiles, role: TLSRole, metrics: KiamMetrics?, logger: Logger) async throws {
    let signature = TLSFilesSignature.taken(of: files)
    let material = try TLSMaterial.load(files)
    self.files = files
    self.role = role
    self.state = Mutex(material)
    self.checked = Mutex(signature)
    self.gauges = metrics?.tls(role.metricsSide)
    self.metrics = metrics
    self.logger = logger
    gauges?.updateError.set(to: 0)
    await publish(material)
  }

  /// The material in use now.
  public var material: TLSMaterial { state.withLock { $0 } }

  public var sslContextConfigurationOverride: NIOSSLContextConfigurationOverride {
    let material = self.material
    var override = NIOSSLContextConfigurationOverride()
    override.certificateChain = material.certificateChain.map { .certificate($0) }
    override.privateKey = .privateKey(material.privateKey)
    return override
  }

  /// Re-reads the files when `stat` shows a change (see ``TLSFilesSignature``); keeps the old
  /// material (and raises the update-error gauge) when the new files are unreadable or invalid.
  @discardableResult
  public func reload() async -> ReloadOutcome {
    let signature = TLSFilesSignature.taken(of: files)
    if let signature, signature == checked.withLock({ $0 }) { return .unchanged }
    let outcome = await readAgain()
    checked.withLock { $0 = signature }
    return outcome
  }

  /// How many times ``reload()`` read the files.
  var reads: Int { readCount.load(ordering: .relaxed) }

  private func readAgain() async -> ReloadOutcome {
    readCount.add(1, ordering: .relaxed)
    let current = material
    do {
      // Files back to what is in use (after a broken version, say) are no longer an error.
      guard try TLSMaterial.fingerprint(of: files) != current.fingerprint else {
        gauges?.updateError.set(to: 0)
        return .unchanged
      }
      let fresh = try TLSMaterial.load(files)
      guard fresh.fingerprint != current.fingerprint else {
        gauges?.updateError.set(to: 0)
        return .unchanged
      }
      state.withLock { $0 = fresh }
      gauges?.updateError.set(to: 0)
      await publish(fresh)
      logger.info(
        "reloaded TLS certificates",
        metadata: [
          "subject": "\(fresh.leaf.subject)", "expiry": "\(RFC3339.format(epochSeconds: fresh.earliestExpiry))",
        ])
      return .reloaded
    } catch {
      let failure =
        error as? KiamError ?? KiamError(code: .tlsMaterial, message: "cannot reload TLS files", cause: error)
      gauges?.updateError.set(to: 1)
      logger.error("error reloading TLS certificates, keeping the previous ones", metadata: ["error": "\(failure)"])
      return .failed(failure)
    }
  }

  private func publish(_ material: TLSMaterial) async {
    gauges?.expirySeconds.set(to: Double(material.earliestExpiry))
    // Our own chain must verify against our CA with our usage, or peers will reject us.
    let own = await Self.verify(
      leaf: material.leaf, intermediates: material.intermediates, roots: material.caCertificates,
      usage: role.ownUsage, serverName: nil)
    switch own {
    case .success:
      updateFailures { $0.own = false }
    case .failure(let error):
      updateFailures { $0.own = true }
      logger.warning("our certificate does not verify against our CA", metadata: ["error": "\(error)"])
    }
  }

  private func updateFailures(
    _ change: (inout (own: Bool, peer: (failure: TLSPeerFailure, at: ContinuousClock.Instant)?)) -> Void
  ) {
    let failing = failures.withLock { state in
      change(&state)
      return state.own || state.peer != nil
    }
    gauges?.verifyError.set(to: failing ? 1 : 0)
  }

  /// The last handshake failure with a peer, if it happened within `window` and no handshake
  /// has succeeded since.
  public func recentPeerFailure(within window: Duration = .seconds(60)) -> TLSPeerFailure? {
    failures.withLock { state in
      guard let peer = state.peer, ContinuousClock.now - peer.at < window else { return nil }
      return peer.failure
    }
  }

  /// Counts and logs a failed handshake (`kiam_tls_handshake_failures_total{side,reason}`) and
  /// sets the verify-error gauge until a handshake succeeds.
  public func recordPeerFailure(_ failure: TLSPeerFailure) {
    updateFailures { $0.peer = (failure, .now) }
    metrics?.registry.makeCounter(
      descriptor: .init(
        namespace: "kiam", subsystem: "tls", metricName: "handshake_failures", unitName: "total",
        helpText: "TLS handshakes with kiam peers that failed, by side and reason"),
      labels: [("side", role.metricsSide.rawValue), ("reason", failure.reason)]
    ).increment()
    logger.warning(
      "TLS handshake with a peer failed", metadata: ["reason": "\(failure.reason)", "error": "\(failure.message)"])
  }

  private func recordPeerVerified() {
    if failures.withLock({ $0.peer != nil }) { updateFailures { $0.peer = nil } }
  }

  /// Verifies a peer's chain against the current CA bundle.
  /// - Parameters:
  ///   - certificates: The peer's chain, leaf first.
  ///   - serverName: For clients, the host dialled; the certificate must name it.
  /// - Returns: The verified chain, leaf to root.
  public func verifyPeer(_ certificates: [NIOSSLCertificate], serverName: String?) async -> Result<
    [Certificate], KiamError
  > {
    guard let first = certificates.first else {
      return .failure(KiamError(code: .peerVerification, message: "peer presented no certificate"))
    }
    let parsed: [Certificate]
    do {
      parsed = try ([first] + certificates.dropFirst()).map { try Certificate(derEncoded: $0.toDERBytes()) }
    } catch {
      return .failure(KiamError(code: .peerVerification, message: "cannot parse peer certificate", cause: error))
    }
    return await Self.verify(
      leaf: parsed[0], intermediates: Array(parsed.dropFirst()), roots: material.caCertificates,
      usage: role.peerUsage, serverName: serverName)
  }

  static func verify(
    leaf: Certificate, intermediates: [Certificate], roots: [Certificate],
    usage: ExtendedKeyUsage.Usage, serverName: String?
  ) async -> Result<[Certificate], KiamError> {
    var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
      RFC5280Policy()
      ExtendedKeyUsagePolicy(required: usage)
      if let serverName {
        ServerIdentityPolicy(
          serverHostname: IPAddressText.isIPAddress(serverName) ? nil : serverName,
          serverIP: IPAddressText.isIPAddress(serverName) ? serverName : nil)
      }
    }
    let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates))
    switch result {
    case .validCertificate(let chain):
      return .success(Array(chain))
    case .couldNotValidate(let failures):
      let reasons = failures.map { "\($0.policyFailureReason)" }
      let detail = reasons.isEmpty ? "no chain to a trusted CA" : Array(Set(reasons)).sorted().joined(separator: "; ")
      return .failure(
        KiamError(code: .peerVerification, message: "certificate \(leaf.subject) rejected: \(detail)"))
    }
  }

  /// The callback the NIOSSL handshake calls to verify the peer.
  /// - Parameter serverName: The host the client dialled (clients only).
  public func verificationCallback(
    serverName: String?
  ) -> @Sendable ([NIOSSLCertificate], EventLoopPromise<NIOSSLVerificationResultWithMetadata>) -> Void {
    { [self] certificates, promise in
      promise.completeWithTask {
        switch await self.verifyPeer(certificates, serverName: serverName) {
        case .success(let chain):
          self.recordPeerVerified()
          let nio = try chain.map { try NIOSSLCertificate(bytes: $0.derBytes(), format: .der) }
          return .certificateVerified(VerificationMetadata(ValidatedCertificateChain(nio)))
        case .failure(let error):
          self.recordPeerFailure(TLSPeerFailure.rejected(error.message))
          return .failed
        }
      }
    }
  }
}
