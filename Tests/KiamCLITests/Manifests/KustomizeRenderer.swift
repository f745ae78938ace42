import Foundation
import KiamTestSupport
import Yams

/// A Kubernetes object as parsed YAML: dictionaries, arrays and scalars.
typealias Object = [String: Any]

/// Renders a kustomization the way `kubectl kustomize` does, for the subset of kustomize this
/// repository's manifests use: `resources` (files and directories), `components`, inline JSON 6902
/// `patches` with a kind/name target, `namespace` and `images`. Anything else is an error, so a
/// manifest that starts using another feature fails the tests instead of being misread. When
/// kubectl is installed the tests also compare this renderer's output with kubectl's.
struct KustomizeRenderer {
  private static let clusterScoped: Set<String> = [
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PriorityClass",
    "StorageClass", "PersistentVolume", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
  ]
  private static let knownKeys: Set<String> = [
    "apiVersion", "kind", "resources", "components", "patches", "namespace", "images",
  ]

  /// Renders the kustomization in `directory`.
  static func render(_ directory: String) throws -> [Object] {
    try render(directory, expectComponent: false)
  }

  private static func render(_ directory: String, expectComponent: Bool) throws -> [Object] {
    let file = "\(directory)/kustomization.yaml"
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
      throw TestSupportError("\(file): missing")
    }
    guard let kustomization = try Yams.load(yaml: text) as? Object else { throw TestSupportError("\(file): not a map") }
    if let unknown = kustomization.keys.first(where: { !knownKeys.contains($0) }) {
      throw TestSupportError("\(file): '\(unknown)' is not supported by the test renderer")
    }
    let kind = kustomization["kind"] as? String ?? "Kustomization"
    guard kind == (expectComponent ? "Component" : "Kustomization") else {
      throw TestSupportError(
        "\(file): kind \(kind) where \(expectComponent ? "Component" : "Kustomization") was expected")
    }
    var objects: [Object] = []
    for resource in kustomization["resources"] as? [String] ?? [] {
      let path = (directory as NSString).appendingPathComponent(resource)
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
        throw TestSupportError("\(file): resource \(resource) does not exist")
      }
      if isDirectory.boolValue {
        objects += try render(path, expectComponent: false)
      } else {
        objects += try documents(path)
      }
    }
    for component in kustomization["components"] as? [String] ?? [] {
      let path = (directory as NSString).appendingPathComponent(component)
      objects = try apply(component: path, to: objects)
    }
    objects = try applyPatches(kustomization["patches"], file: file, to: objects)
    if let namespace = kustomization["namespace"] as? String {
      objects = objects.map { object in
        guard let kind = object["kind"] as? String, !clusterScoped.contains(kind) else { return object }
        var object = object
        var metadata = object["metadata"] as? Object ?? [:]
        metadata["namespace"] = namespace
        object["metadata"] = metadata
        return object
      }
    }
    if let images = kustomization["images"] as? [Object] {
      objects = objects.map { setImages(images, in: $0) }
    }
    return objects
  }

  /// The YAML documents of one file (empty documents skipped).
  static func documents(_ path: String) throws -> [Object] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    return try documents(yaml: text, source: path)
  }

  static func documents(yaml text: String, source: String) throws -> [Object] {
    var objects: [Object] = []
    for document in try Yams.load_all(yaml: text) {
      if document is NSNull { continue }
      guard let object = document as? Object else { throw TestSupportError("\(source): a document is not a map") }
      objects.append(object)
    }
    return objects
  }

  private static func apply(component directory: String, to objects: [Object]) throws -> [Object] {
    let file = "\(directory)/kustomization.yaml"
    guard let text = try? String(contentsOfFile: file, encoding: .utf8),
      let component = try Yams.load(yaml: text) as? Object
    else { throw TestSupportError("\(file): missing or not a map") }
    if let unknown = component.keys.first(where: { !["apiVersion", "kind", "resources", "patches"].contains($0) }) {
      throw TestSupportError("\(file): '\(unknown)' is not supported in components by the test renderer")
    }
    guard component["kind"] as? String == "Component" else { throw TestSupportError("\(file): not a Component") }
    var objects = objects
    for resource in component["resources"] as? [String] ?? [] {
      objects += try documents((directory as NSString).appendingPathComponent(resource))
    }
    return try applyPatches(component["patches"], file: file, to: objects)
  }

  private static func applyPatches(_ patches: Any?, file: String, to objects: [Object]) throws -> [Object] {
    guard let patches else { return objects }
    guard let list = patches as? [Object] else { throw TestSupportError("\(file): patches is not a list") }
    var objects = objects
    for patch in list {
      guard let target = patch["target"] as? Object, let kind = target["kind"] as? String,
        let name = target["name"] as? String, let body = patch["patch"] as? String
      else { throw TestSupportError("\(file): only inline patches with a kind/name target are supported") }
      guard let operations = try Yams.load(yaml: body) as? [Object] else {
        throw TestSupportError("\(file): patch for \(kind)/\(name) is not a JSON 6902 list")
      }
      var matched = false
      for index in objects.indices {
        let object = objects[index]
        guard object["kind"] as? String == kind, (object["metadata"] as? Object)?["name"] as? String == name else {
          continue
        }
        if let group = target["group"] as? String {
          let apiVersion = object["apiVersion"] as? String ?? ""
          let objectGroup = apiVersion.contains("/") ? String(apiVersion.split(separator: "/")[0]) : ""
          guard objectGroup == group else { continue }
        }
        matched = true
        var patched: Any = object
        for operation in operations {
          patched = try JSONPatch.apply(operation, to: patched, context: "\(file) \(kind)/\(name)")
        }
        objects[index] = patched as? Object ?? object
      }
      guard matched else { throw TestSupportError("\(file): patch target \(kind)/\(name) matches nothing") }
    }
    return objects
  }

  private static func setImages(_ images: [Object], in object: Object) -> Object {
    guard var spec = object["spec"] as? Object, var template = spec["template"] as? Object,
      var podSpec = template["spec"] as? Object
    else { return object }
    for key in ["containers", "initContainers"] {
      guard var containers = podSpec[key] as? [Object] else { continue }
      for index in containers.indices {
        guard let image = containers[index]["image"] as? String else { continue }
        let name = String(image.split(separator: "@")[0].split(separator: ":")[0])
        guard let rule = images.first(where: { $0["name"] as? String == name }) else { continue }
        var newImage = rule["newName"] as? String ?? name
        if let tag = rule["newTag"] { newImage += ":\(tag)" }
        containers[index]["image"] = newImage
      }
      podSpec[key] = containers
    }
    template["spec"] = podSpec
    spec["template"] = template
    var object = object
    object["spec"] = spec
    return object
  }

  /// Objects as canonical JSON (sorted keys), keyed by kind/namespace/name, for comparisons.
  static func canonical(_ objects: [Object]) throws -> [String: String] {
    var result: [String: String] = [:]
    for object in objects {
      let metadata = object["metadata"] as? Object ?? [:]
      let key = "\(object["kind"] ?? "?")/\(metadata["namespace"] ?? "")/\(metadata["name"] ?? "?")"
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      result[key] = String(decoding: data, as: UTF8.self)
    }
    return result
  }
}
