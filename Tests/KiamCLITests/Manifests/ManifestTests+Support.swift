import Foundation
import KiamAgent
import KiamServer
import KiamTestSupport

@testable import kiam

extension ManifestTests {
  /// `kubectl` when it is installed (it has kustomize built in).
  static func kubectl() -> String? { executable("kubectl") }

  /// The full path of a program on PATH.
  static func executable(_ name: String) -> String? {
    if name.hasPrefix("/") { return name }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
      let candidate = "\(directory)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
  }

  /// Runs a command to completion; standard output and error together.
  static func run(_ command: [String]) async throws -> (status: Int32, output: String) {
    guard let program = executable(command[0]) else { throw TestSupportError("\(command[0]) is not installed") }
    let result = try await KiamProcess.run(Array(command.dropFirst()), environment: nil, executable: program)
    return (result.status, result.stdout + result.stderr)
  }

  /// The container's environment as kiam would see it in a host-network pod on a dual-stack
  /// node: `status.podIP` is the node's first address, `status.podIPs` both, comma-separated, as
  /// the kubelet writes them.
  static func environment(of container: Object) -> [String: String] {
    var environment: [String: String] = [:]
    for variable in container["env"] as? [Object] ?? [] {
      guard let name = variable["name"] as? String else { continue }
      if let value = variable["value"] as? String {
        environment[name] = value
      } else if variable.value("valueFrom", "fieldRef", "fieldPath") as? String == "status.podIP" {
        environment[name] = "10.0.0.5"
      } else if variable.value("valueFrom", "fieldRef", "fieldPath") as? String == "status.podIPs" {
        environment[name] = "10.0.0.5,fd00:10::5"
      }
    }
    return environment
  }

  /// A directory holding, at their mount paths, exactly the files the container's volumes give it:
  /// secret keys (as `make secrets` writes them, or as mapped by `items`), projected token paths
  /// and host paths.
  static func podFileRoot(workload: Object, container: Object, secretKeys: [String: [String]]) throws
    -> TemporaryDirectory
  {
    var paths: [String] = []
    let volumes = Dictionary(
      workload.volumes.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    for mount in container["volumeMounts"] as? [Object] ?? [] {
      guard let name = mount["name"] as? String, let mountPath = mount["mountPath"] as? String,
        let volume = volumes[name]
      else { throw TestSupportError("\(workload.name): mount without a volume") }
      var files: [String] = []
      if let secret = volume["secret"] as? Object {
        if let items = secret["items"] as? [Object] {
          files = items.compactMap { $0["path"] as? String }.map { "\(mountPath)/\($0)" }
        } else {
          let secretName = secret["secretName"] as? String ?? ""
          guard let keys = secretKeys[secretName] else {
            throw TestSupportError("\(workload.name): secret \(secretName) is not one `make secrets` writes")
          }
          files = keys.map { "\(mountPath)/\($0)" }
        }
      } else if let sources = volume.value("projected", "sources") as? [Object] {
        files = sources.compactMap { $0.value("serviceAccountToken", "path") as? String }.map { "\(mountPath)/\($0)" }
      } else if volume["hostPath"] != nil {
        files = [mountPath]
      }
      paths += files
    }
    return try fileRoot(with: paths)
  }

  /// The server configuration of a workload's first container (files taken as present).
  static func server(_ workload: Object) throws -> ServerConfiguration {
    let args = workload.containers.first?["args"] as? [String] ?? []
    let root = try argumentFileRoot(for: args)
    defer { root.remove() }
    return try parseServer(args, context: ResolveContext(environment: [:], fileRoot: root.path)).0
  }

  /// The agent configuration of a workload's first container (files taken as present).
  static func agent(_ workload: Object) throws -> AgentConfiguration {
    let args = workload.containers.first?["args"] as? [String] ?? []
    let root = try argumentFileRoot(for: args)
    defer { root.remove() }
    return try parseAgent(args, context: ResolveContext(environment: ["HOST_IP": "10.0.0.5"], fileRoot: root.path)).0
  }

  /// Placeholder files at every absolute path the arguments name (`--flag=/path`).
  private static func argumentFileRoot(for args: [String]) throws -> TemporaryDirectory {
    try fileRoot(
      with: args.compactMap { argument in
        argument.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init).flatMap {
          $0.hasPrefix("/") ? $0 : nil
        }
      })
  }
}

/// Runs `scripts/make-secrets.sh` and reads back the Secrets it wrote.
struct MakeSecrets {
  let directory: TemporaryDirectory
  /// Secret name → file name → contents.
  let files: [String: [String: Data]]
  let namespaces: Set<String>

  static func run(namespace: String) async throws -> MakeSecrets {
    let directory = try TemporaryDirectory(prefix: "kiam-make-secrets")
    let result = try await ManifestTests.run([
      KiamProcess.packageRoot + "/scripts/make-secrets.sh", directory.path, namespace,
    ])
    guard result.status == 0 else { throw TestSupportError("make-secrets.sh failed: \(result.output)") }
    let objects = try KustomizeRenderer.documents("\(directory.path)/kiam-secrets.yaml")
    var files: [String: [String: Data]] = [:]
    var namespaces: Set<String> = []
    for object in objects {
      guard object["kind"] as? String == "Secret" else {
        throw TestSupportError("not a Secret: \(object["kind"] ?? "")")
      }
      namespaces.insert(object.namespace ?? "")
      var decoded: [String: Data] = [:]
      for (key, value) in object["data"] as? [String: String] ?? [:] {
        guard let data = Data(base64Encoded: value) else {
          throw TestSupportError("\(object.name)/\(key) is not base64")
        }
        decoded[key] = data
      }
      files[object.name] = decoded
    }
    return MakeSecrets(directory: directory, files: files, namespaces: namespaces)
  }

  /// Secret name → keys, from a real run.
  static func keys() async throws -> [String: [String]] {
    let secrets = try await run(namespace: "kube-system")
    defer { secrets.directory.remove() }
    return secrets.files.mapValues { Array($0.keys) }
  }
}
