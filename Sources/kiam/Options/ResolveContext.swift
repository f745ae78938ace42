/// What resolving flags may consult besides the flags: the environment (`HOST_IP`) and the file
/// system root under which `--cert`/`--key`/`--ca`/`--kubeconfig` are checked (tests use a
/// temporary root so real manifests' `/etc/kiam/tls/...` arguments can be parsed verbatim).
struct ResolveContext {
  var environment: [String: String]
  var fileRoot: String

  init(environment: [String: String] = [:], fileRoot: String = "") {
    self.environment = environment
    self.fileRoot = fileRoot
  }

  static func process() -> ResolveContext {
    ResolveContext(environment: Environment.current(), fileRoot: "")
  }

  func path(_ path: String) -> String { fileRoot + path }
}
