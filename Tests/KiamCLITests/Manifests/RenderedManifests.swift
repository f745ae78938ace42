import Foundation
import KiamTestSupport

/// A rendered kustomization with accessors for the parts the manifest tests check.
struct RenderedManifests {
  let objects: [Object]

  /// `manifests/` (the base) and the example overlay with both components.
  static let base = "manifests"
  static let overlay = "docs/examples/overlay"

  static func render(_ relativePath: String) throws -> RenderedManifests {
    RenderedManifests(objects: try KustomizeRenderer.render("\(KiamProcess.packageRoot)/\(relativePath)"))
  }

  func objects(kind: String) -> [Object] { objects.filter { $0["kind"] as? String == kind } }

  func object(kind: String, name: String) throws -> Object {
    guard let object = objects.first(where: { $0["kind"] as? String == kind && $0.name == name }) else {
      throw TestSupportError("no \(kind)/\(name) rendered")
    }
    return object
  }

  /// The workloads (Deployments and DaemonSets).
  var workloads: [Object] { objects.filter { ["Deployment", "DaemonSet"].contains($0["kind"] as? String ?? "") } }
}

extension Dictionary where Key == String, Value == Any {
  var name: String { (self["metadata"] as? Object)?["name"] as? String ?? "" }
  var namespace: String? { (self["metadata"] as? Object)?["namespace"] as? String }
  var spec: Object { self["spec"] as? Object ?? [:] }
  var template: Object { spec["template"] as? Object ?? [:] }
  var podSpec: Object { template["spec"] as? Object ?? [:] }
  var podLabels: [String: String] { (template["metadata"] as? Object)?["labels"] as? [String: String] ?? [:] }
  var podAnnotations: [String: String] {
    (template["metadata"] as? Object)?["annotations"] as? [String: String] ?? [:]
  }
  var containers: [Object] { podSpec["containers"] as? [Object] ?? [] }
  var volumes: [Object] { podSpec["volumes"] as? [Object] ?? [] }

  /// A nested value by keys and array indexes.
  func value(_ path: Any...) -> Any? {
    var node: Any? = self
    for step in path {
      if let key = step as? String {
        node = (node as? Object)?[key]
      } else if let index = step as? Int, let array = node as? [Any], index < array.count {
        node = array[index]
      } else {
        return nil
      }
    }
    return node
  }
}
