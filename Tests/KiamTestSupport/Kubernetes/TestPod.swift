import Foundation

/// A pod as the test API server serves it: rendered as a realistic Pod JSON object (with the
/// many fields kiam ignores) so decoding is exercised on the real shape.
public struct TestPod: Sendable, Hashable {
  public var namespace: String
  public var name: String
  public var uid: String
  public var ip: String?
  public var ips: [String]
  public var phase: String
  public var nodeName: String
  public var hostNetwork: Bool
  public var annotations: [String: String]
  public var deletionTimestamp: String?
  public var creationTimestamp: String
  public var serviceAccountName: String

  public init(
    namespace: String = "default", name: String, uid: String = UUID().uuidString.lowercased(), ip: String? = nil,
    ips: [String]? = nil, phase: String = "Running", nodeName: String = "node-1", hostNetwork: Bool = false,
    role: String? = nil, annotations: [String: String] = [:], deletionTimestamp: String? = nil,
    creationTimestamp: String = "2026-01-01T00:00:00Z", serviceAccountName: String = "default"
  ) {
    self.namespace = namespace
    self.name = name
    self.uid = uid
    self.ip = ip
    self.ips = ips ?? (ip.map { [$0] } ?? [])
    self.phase = phase
    self.nodeName = nodeName
    self.hostNetwork = hostNetwork
    var all = annotations
    if let role { all["iam.amazonaws.com/role"] = role }
    self.annotations = all
    self.deletionTimestamp = deletionTimestamp
    self.creationTimestamp = creationTimestamp
    self.serviceAccountName = serviceAccountName
  }

  public var key: String { "\(namespace)/\(name)" }

  /// The Pod as the API returns it.
  public func json(resourceVersion: Int) -> [String: Any] {
    var metadata: [String: Any] = [
      "name": name, "namespace": namespace, "uid": uid, "resourceVersion": String(resourceVersion),
      "creationTimestamp": creationTimestamp, "generateName": "\(name)-",
      "labels": ["app": name, "pod-template-hash": "7d9f8b6c5"],
      "annotations": annotations.merging(["kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"]) { a, _ in a },
      "ownerReferences": [
        ["apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "\(name)-rs", "uid": "x", "controller": true]
      ],
      "managedFields": [["manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1"]],
    ]
    if let deletionTimestamp {
      metadata["deletionTimestamp"] = deletionTimestamp
      metadata["deletionGracePeriodSeconds"] = 30
    }
    var status: [String: Any] = [
      "phase": phase, "hostIP": "10.0.0.10", "qosClass": "BestEffort", "startTime": creationTimestamp,
      "conditions": [["type": "Ready", "status": phase == "Running" ? "True" : "False"]],
      "containerStatuses": [
        ["name": "app", "ready": true, "restartCount": 0, "image": "app:1", "imageID": "sha256:abc"]
      ],
    ]
    if let ip {
      status["podIP"] = ip
      status["podIPs"] = ips.map { ["ip": $0] }
    }
    return [
      "kind": "Pod", "apiVersion": "v1", "metadata": metadata,
      "spec": [
        "nodeName": nodeName, "hostNetwork": hostNetwork, "serviceAccountName": serviceAccountName,
        "serviceAccount": serviceAccountName, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "containers": [
          [
            "name": "app", "image": "app:1", "resources": [:] as [String: Any],
            "env": [["name": "A", "value": "b"]],
          ]
        ],
        "tolerations": [["key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"]],
      ],
      "status": status,
    ]
  }
}

/// A namespace as the test API server serves it.
public struct TestNamespace: Sendable, Hashable {
  public var name: String
  public var annotations: [String: String]

  public init(name: String, permitted: String? = nil, annotations: [String: String] = [:]) {
    self.name = name
    var all = annotations
    if let permitted { all["iam.amazonaws.com/permitted"] = permitted }
    self.annotations = all
  }

  public func json(resourceVersion: Int) -> [String: Any] {
    [
      "kind": "Namespace", "apiVersion": "v1",
      "metadata": [
        "name": name, "uid": "ns-\(name)", "resourceVersion": String(resourceVersion),
        "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": annotations,
        "labels": ["kubernetes.io/metadata.name": name],
      ],
      "spec": ["finalizers": ["kubernetes"]], "status": ["phase": "Active"],
    ]
  }
}
