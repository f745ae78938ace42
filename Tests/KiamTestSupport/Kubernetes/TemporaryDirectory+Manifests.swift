import Foundation

extension TemporaryDirectory {
  /// Writes a file for `kiam server --pod-manifests`: one `List` document (JSON, which is YAML)
  /// with the namespaces and pods as the API would show them. Returns the file's path.
  @discardableResult
  public func writeManifests(_ namespaces: [TestNamespace], _ pods: [TestPod], name: String = "manifests/pods.json")
    throws -> String
  {
    let items = namespaces.map { $0.json(resourceVersion: 1) } + pods.map { $0.json(resourceVersion: 1) }
    let data = try JSONSerialization.data(
      withJSONObject: ["apiVersion": "v1", "kind": "List", "items": items], options: [.sortedKeys])
    return try write(name, String(decoding: data, as: UTF8.self))
  }
}
