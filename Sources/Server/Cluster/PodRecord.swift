import KiamShared

/// The lifecycle phase of a pod.
public enum PodPhase: UInt8, Sendable {
  case pending, running, succeeded, failed, unknown

  init(_ text: String?) {
    switch text {
    case "Pending": self = .pending
    case "Running": self = .running
    case "Succeeded": self = .succeeded
    case "Failed": self = .failed
    default: self = .unknown
    }
  }
}

/// What the server keeps of a pod: only the fields it uses, not the API object.
public struct PodRecord: Sendable, Hashable {
  public var namespace: String
  public var name: String
  public var uid: String
  public var nodeName: String
  /// Every pod IP (`status.podIP` and `status.podIPs`), canonical text.
  public var ips: [String]
  public var phase: PodPhase
  public var hostNetwork: Bool
  /// Unix seconds; set once deletion has been requested.
  public var deletionTimestamp: Int64?
  /// Unix seconds.
  public var creationTimestamp: Int64
  public var serviceAccountName: String
  /// `iam.amazonaws.com/role`, empty when absent.
  public var role: String
  /// `iam.amazonaws.com/session-name`, empty when absent.
  public var sessionName: String
  /// `iam.amazonaws.com/external-id`, empty when absent.
  public var externalID: String

  public init(
    namespace: String, name: String, uid: String = "", nodeName: String = "", ips: [String] = [],
    phase: PodPhase = .running, hostNetwork: Bool = false, deletionTimestamp: Int64? = nil,
    creationTimestamp: Int64 = 0, serviceAccountName: String = "default", role: String = "",
    sessionName: String = "", externalID: String = ""
  ) {
    self.namespace = namespace
    self.name = name
    self.uid = uid
    self.nodeName = nodeName
    self.ips = ips
    self.phase = phase
    self.hostNetwork = hostNetwork
    self.deletionTimestamp = deletionTimestamp
    self.creationTimestamp = creationTimestamp
    self.serviceAccountName = serviceAccountName
    self.role = role
    self.sessionName = sessionName
    self.externalID = externalID
  }

  /// `namespace/name`, the cache key (a recreated StatefulSet pod replaces its predecessor).
  public var key: String { "\(namespace)/\(name)" }
  /// Succeeded or Failed: the pod no longer runs and no longer holds its IP.
  public var isCompleted: Bool { phase == .succeeded || phase == .failed }
  /// Deletion requested.
  public var isTerminating: Bool { deletionTimestamp != nil }
}

extension PodRecord {
  /// Builds a record from a decoded pod; `intern` shares storage of repeated strings.
  init(_ object: PodObject, intern: (String) -> String) {
    let meta = object.metadata
    let annotations = meta.annotations ?? [:]
    var ips: [String] = []
    if let ip = object.status?.podIP, let canonical = CanonicalIP.normalize(ip) { ips.append(canonical) }
    for entry in object.status?.podIPs ?? [] {
      if let canonical = CanonicalIP.normalize(entry.ip), !ips.contains(canonical) { ips.append(canonical) }
    }
    self.init(
      namespace: intern(meta.namespace ?? "default"),
      name: meta.name,
      uid: meta.uid,
      nodeName: intern(object.spec?.nodeName ?? ""),
      ips: ips,
      phase: PodPhase(object.status?.phase),
      hostNetwork: object.spec?.hostNetwork ?? false,
      deletionTimestamp: meta.deletionTimestamp.flatMap { RFC3339Parse.seconds($0) },
      creationTimestamp: meta.creationTimestamp.flatMap { RFC3339Parse.seconds($0) } ?? 0,
      serviceAccountName: intern(object.spec?.serviceAccountName ?? "default"),
      role: annotations[Annotations.role] ?? "",
      sessionName: annotations[Annotations.sessionName] ?? "",
      externalID: annotations[Annotations.externalID] ?? ""
    )
  }
}

/// kiam's annotation keys.
public enum Annotations {
  public static let role = "iam.amazonaws.com/role"
  public static let sessionName = "iam.amazonaws.com/session-name"
  public static let externalID = "iam.amazonaws.com/external-id"
  public static let permitted = "iam.amazonaws.com/permitted"
}
