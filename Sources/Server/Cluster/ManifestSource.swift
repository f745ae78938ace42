import Foundation
import KiamShared
import Logging
import ServiceLifecycle
import Yams

/// Static mode (`--pod-manifests DIR`): pods and namespaces come from YAML or JSON files instead
/// of the Kubernetes API, like kubelet static pods. Files are re-read when they change; a file
/// that does not parse is reported and the previous content is kept, so a typo never empties
/// the caches.
struct ManifestSource: Service {
  let directory: String
  let pods: PodCache
  let namespaces: NamespaceCache
  let logger: Logger
  var interval: Duration = .seconds(1)

  func run() async throws {
    try? await cancelWhenGracefulShutdown {
      try await self.loop()
    }
  }

  private func loop() async throws {
    var lastFingerprint: [String: Date] = [:]
    var lastGood: [String: [Document]] = [:]
    do {
      while true {
        let files = listFiles()
        var fingerprint: [String: Date] = [:]
        for file in files {
          let attributes = try? FileManager.default.attributesOfItem(atPath: file)
          fingerprint[file] = (attributes?[.modificationDate] as? Date) ?? .distantPast
        }
        if fingerprint != lastFingerprint || !pods.isSynced {
          var next: [String: [Document]] = [:]
          for file in files {
            if let unchanged = lastGood[file], fingerprint[file] == lastFingerprint[file] {
              next[file] = unchanged
              continue
            }
            do {
              next[file] = try Self.parse(file: file)
            } catch {
              logger.error(
                "cannot read pod manifest, keeping its previous content",
                metadata: ["file": "\(file)", "error": "\(KiamError.describe(error))"])
              if let previous = lastGood[file] { next[file] = previous }
            }
          }
          apply(next.values.flatMap { $0 })
          lastGood = next
          lastFingerprint = fingerprint
        }
        try await Task.sleep(for: interval)
      }
    }
  }

  private func apply(_ documents: [Document]) {
    var podRecords: [String: PodRecord] = [:]
    var namespaceEntries: [String: String?] = [:]
    for document in documents {
      switch document {
      case .pod(let object):
        let record = PodRecord(object, intern: { $0 })
        let written = [object.status?.podIP].compactMap { $0 } + (object.status?.podIPs ?? []).map(\.ip)
        for ip in written where CanonicalIP.normalize(ip) == nil {
          logger.warning(
            "pod manifest has an invalid pod IP, ignoring it: no credentials are served to it",
            metadata: ["pod": "\(record.key)", "ip": "\(JSON.quote(ip))"])
        }
        podRecords[record.key] = record
      case .namespace(let object):
        namespaceEntries[object.metadata.name] = object.metadata.annotations?[Annotations.permitted]
      }
    }
    namespaces.replaceAll(namespaceEntries.map { ($0.key, $0.value) })
    pods.replaceAll(Array(podRecords.values))
  }

  private func listFiles() -> [String] {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
    return names.filter {
      !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json"))
    }
    .sorted().map { "\(directory)/\($0)" }
  }

  enum Document {
    case pod(PodObject)
    case namespace(NamespaceObject)
  }

  private struct Kind: Decodable {
    var kind: String?
  }

  /// Parses every document of a file (`---` separated; `kind: List` expanded). Unknown kinds are skipped.
  static func parse(file: String) throws -> [Document] {
    let text = try String(contentsOfFile: file, encoding: .utf8)
    var documents: [Document] = []
    let decoder = YAMLDecoder()
    func add(_ node: Node) throws {
      let kind = try decoder.decode(Kind.self, from: node).kind
      switch kind {
      case "Pod": documents.append(.pod(try decoder.decode(PodObject.self, from: node)))
      case "Namespace": documents.append(.namespace(try decoder.decode(NamespaceObject.self, from: node)))
      case "List", "PodList", "NamespaceList":
        for item in node["items"]?.sequence ?? [] { try add(item) }
      default: break
      }
    }
    // Yams' document sequence stores a parse error instead of throwing it: check it explicitly.
    var nodes = try Yams.compose_all(yaml: text)
    while let node = nodes.next() {
      try add(node)
    }
    if let error = nodes.error { throw error }
    return documents
  }
}
