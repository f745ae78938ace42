import KiamShared

/// Where STS calls go and which region signs them (kiam §5.9, with us-isob fixed).
public struct STSEndpoint: Sendable, Hashable, CustomStringConvertible {
  /// e.g. `https://sts.eu-west-1.amazonaws.com`.
  public let url: String
  /// The SigV4 signing region.
  public let signingRegion: String

  public init(url: String, signingRegion: String) {
    self.url = url
    self.signingRegion = signingRegion
  }

  public var description: String { "\(url) (signing region \(signingRegion))" }

  /// - Parameters:
  ///   - region: `--region`; nil or empty means the global endpoint.
  ///   - override: `--sts-endpoint`, used as is (VPC endpoints, tests).
  public static func resolve(region: String?, override: String?) -> STSEndpoint {
    let region = region.flatMap { $0.isEmpty ? nil : $0 }
    if let override, !override.isEmpty {
      var url = override
      while url.hasSuffix("/") { url.removeLast() }
      return STSEndpoint(url: url, signingRegion: region.map(stripFIPS) ?? "us-east-1")
    }
    guard let region else { return STSEndpoint(url: "https://sts.amazonaws.com", signingRegion: "us-east-1") }
    if region.contains("fips") {
      let base = stripFIPS(region)
      return STSEndpoint(url: "https://sts-fips.\(base).amazonaws.com", signingRegion: base)
    }
    let host: String
    if region.hasPrefix("cn-") {
      host = "sts.\(region).amazonaws.com.cn"
    } else if region.hasPrefix("us-isob-") {
      host = "sts.\(region).sc2s.sgov.gov"
    } else if region.hasPrefix("us-iso-") {
      host = "sts.\(region).c2s.ic.gov"
    } else {
      host = "sts.\(region).amazonaws.com"
    }
    return STSEndpoint(url: "https://\(host)", signingRegion: region)
  }

  private static func stripFIPS(_ region: String) -> String {
    var base = region
    for token in ["-fips", "fips-"] { base = base.replacingOccurrences(of: token, with: "") }
    return base
  }
}

extension String {
  fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
    guard !target.isEmpty else { return self }
    var out = ""
    var rest = self[...]
    while let range = rest.firstRange(of: target) {
      out += rest[..<range.lowerBound]
      out += replacement
      rest = rest[range.upperBound...]
    }
    return out + rest
  }
}
