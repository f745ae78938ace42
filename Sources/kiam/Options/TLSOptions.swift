import ArgumentParser
import KiamShared

/// `--cert`, `--key`, `--ca`: required by every command.
struct TLSOptions: ParsableArguments {
  @Option(name: .customLong("cert"), help: "Path to the certificate file (PEM, leaf first).")
  var cert: String?

  @Option(name: .customLong("key"), help: "Path to the private key file (PEM).")
  var key: String?

  @Option(name: .customLong("ca"), help: "Path to the CA bundle that peers must chain to (PEM).")
  var ca: String?

  func files() throws -> TLSFiles {
    TLSFiles(
      certificatePath: try FlagValues.readableFile(cert, flag: "cert"),
      keyPath: try FlagValues.readableFile(key, flag: "key"),
      caPath: try FlagValues.readableFile(ca, flag: "ca"))
  }
}
