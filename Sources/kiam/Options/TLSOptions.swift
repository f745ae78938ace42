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

  func files(context: ResolveContext) throws -> TLSFiles {
    TLSFiles(
      certificatePath: try FlagValues.readableFile(cert, flag: "cert", context: context),
      keyPath: try FlagValues.readableFile(key, flag: "key", context: context),
      caPath: try FlagValues.readableFile(ca, flag: "ca", context: context))
  }
}
