public import SwiftASN1
public import X509

/// Requires the leaf certificate to allow one extended key usage.
///
/// As in Go's `x509.Verify` (what Go kiam used), a leaf without an EKU extension is valid for any
/// usage, and `anyExtendedKeyUsage` matches everything; a leaf whose EKU list lacks the usage is
/// rejected.
public struct ExtendedKeyUsagePolicy: VerifierPolicy, Sendable {
  public let required: ExtendedKeyUsage.Usage

  public init(required: ExtendedKeyUsage.Usage) {
    self.required = required
  }

  public var verifyingCriticalExtensions: [ASN1ObjectIdentifier] {
    [.X509ExtensionID.extendedKeyUsage]
  }

  public func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
    let leaf = chain.leaf
    let usages: ExtendedKeyUsage?
    do {
      usages = try leaf.extensions.extendedKeyUsage
    } catch {
      return .failsToMeetPolicy(reason: "cannot parse extended key usage: \(error)")
    }
    guard let usages else { return .meetsPolicy }
    if usages.contains(required) || usages.contains(.any) { return .meetsPolicy }
    return .failsToMeetPolicy(
      reason: "certificate \(leaf.subject) does not allow extended key usage \(required)")
  }
}
