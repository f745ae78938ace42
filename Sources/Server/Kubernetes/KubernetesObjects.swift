/// The parts of Kubernetes objects the server reads. Everything else in the API's JSON is skipped
/// while decoding, so the caches hold only what is used.

/// `metadata` of an object.
struct ObjectMeta: Decodable, Sendable {
  var name: String = ""
  var namespace: String?
  var uid: String = ""
  var resourceVersion: String?
  var creationTimestamp: String?
  var deletionTimestamp: String?
  var annotations: [String: String]?

  enum CodingKeys: String, CodingKey {
    case name, namespace, uid, resourceVersion, creationTimestamp, deletionTimestamp, annotations
  }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
    namespace = try c.decodeIfPresent(String.self, forKey: .namespace)
    uid = try c.decodeIfPresent(String.self, forKey: .uid) ?? ""
    resourceVersion = try c.decodeIfPresent(String.self, forKey: .resourceVersion)
    creationTimestamp = try c.decodeIfPresent(String.self, forKey: .creationTimestamp)
    deletionTimestamp = try c.decodeIfPresent(String.self, forKey: .deletionTimestamp)
    // Only the iam.amazonaws.com/* annotations are kept.
    if let all = try c.decodeIfPresent([String: String].self, forKey: .annotations) {
      let kept = all.filter { $0.key.hasPrefix("iam.amazonaws.com/") }
      annotations = kept.isEmpty ? nil : kept
    }
  }

  init(name: String, namespace: String? = nil, uid: String = "", annotations: [String: String]? = nil) {
    self.name = name
    self.namespace = namespace
    self.uid = uid
    self.annotations = annotations
  }
}

/// A Pod as decoded from the API or a manifest.
struct PodObject: Decodable, Sendable {
  var metadata: ObjectMeta
  var spec: Spec?
  var status: Status?

  struct Spec: Decodable, Sendable {
    var nodeName: String?
    var hostNetwork: Bool?
    var serviceAccountName: String?
  }

  struct Status: Decodable, Sendable {
    var phase: String?
    var podIP: String?
    var podIPs: [PodIP]?
  }

  struct PodIP: Decodable, Sendable {
    var ip: String
  }
}

/// A Namespace as decoded from the API or a manifest.
struct NamespaceObject: Decodable, Sendable {
  var metadata: ObjectMeta
}

/// A `List` response: items plus the list's resourceVersion and continue token.
struct ObjectList<Item: Decodable & Sendable>: Decodable, Sendable {
  var metadata: ListMeta
  var items: [Item]

  struct ListMeta: Decodable, Sendable {
    var resourceVersion: String? = nil
    var `continue`: String? = nil
  }

  enum CodingKeys: String, CodingKey { case metadata, items }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    metadata = try c.decodeIfPresent(ListMeta.self, forKey: .metadata) ?? ListMeta()
    items = try c.decodeIfPresent([Item].self, forKey: .items) ?? []
  }
}

/// The API's `Status` object, in error responses and watch `ERROR` events.
struct APIStatus: Decodable, Sendable {
  var code: Int?
  var reason: String?
  var message: String?
}

/// One line of a watch stream: `{"type":"ADDED","object":{...}}`.
enum WatchEvent<Object: Decodable & Sendable>: Sendable {
  case added(Object)
  case modified(Object)
  case deleted(Object)
  /// Only the resourceVersion is meaningful.
  case bookmark(resourceVersion: String)
  /// Usually 410 Gone: the resourceVersion is too old and the client must list again.
  case error(APIStatus)
}

extension WatchEvent: Decodable {
  private enum CodingKeys: String, CodingKey { case type, object }
  private struct BookmarkObject: Decodable {
    var metadata: Meta
    struct Meta: Decodable { var resourceVersion: String? }
  }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let type = try c.decode(String.self, forKey: .type)
    switch type {
    case "ADDED": self = .added(try c.decode(Object.self, forKey: .object))
    case "MODIFIED": self = .modified(try c.decode(Object.self, forKey: .object))
    case "DELETED": self = .deleted(try c.decode(Object.self, forKey: .object))
    case "BOOKMARK":
      let object = try c.decode(BookmarkObject.self, forKey: .object)
      self = .bookmark(resourceVersion: object.metadata.resourceVersion ?? "")
    case "ERROR": self = .error(try c.decode(APIStatus.self, forKey: .object))
    default:
      throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown watch event type \(type)")
    }
  }
}

/// `authentication.k8s.io/v1` TokenReview, request and the status fields we read.
struct TokenReviewRequest: Encodable, Sendable {
  var apiVersion = "authentication.k8s.io/v1"
  var kind = "TokenReview"
  var spec: Spec

  struct Spec: Encodable, Sendable {
    var token: String
    var audiences: [String]
  }
}

struct TokenReviewResponse: Decodable, Sendable {
  var status: Status?

  struct Status: Decodable, Sendable {
    var authenticated: Bool?
    var error: String?
    var audiences: [String]?
    var user: User?
  }

  struct User: Decodable, Sendable {
    var username: String?
    var uid: String?
    var extra: [String: [String]]?
  }
}
