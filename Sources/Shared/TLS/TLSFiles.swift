/// The three PEM files a kiam process authenticates with (`--cert`, `--key`, `--ca`).
public struct TLSFiles: Sendable, Hashable {
  /// Certificate chain, leaf first.
  public var certificatePath: String
  /// Private key of the leaf.
  public var keyPath: String
  /// CA bundle that peers must chain to. Only these roots are trusted, never the system's.
  public var caPath: String

  public init(certificatePath: String, keyPath: String, caPath: String) {
    self.certificatePath = certificatePath
    self.keyPath = keyPath
    self.caPath = caPath
  }
}
