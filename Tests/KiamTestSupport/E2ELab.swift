import Foundation

/// A node and its pods as network namespaces, the way the agent runs on a real node:
///
///     root netns (test process, Kubernetes API test server on <hostSide>)
///       └─ veth ── node netns: agent (--iptables), server, moto (STS at 10.199.0.1:5000 and the
///                  node's own metadata service at 169.254.169.254:80)
///                    ├─ veth kpXa ── pod netns A: 10.200.a.2, default route via the node
///                    └─ veth kpXb ── pod netns B: ...
///
/// Pods reach 169.254.169.254:80 only through the node; the agent's DNAT rule sends it to the agent.
/// A dual-stack pod (``addDualStackPod(_:)``) also has fd00:200:a::2, with an IPv6 default route
/// via the node, which has fd00:199::1 (the IPv6 HOST_IP) and the IPv6 metadata address
/// fd00:ec2::254, as a Nitro instance with the IPv6 endpoint enabled does.
public final class E2ELab: @unchecked Sendable {
  public let id: String
  public let node: String
  /// The node's address (HOST_IP), on a dummy interface.
  public let nodeIP = "10.199.0.1"
  /// The node's IPv6 address (the second of the agent's `status.podIPs`), on the same dummy interface.
  public let nodeIPv6 = "fd00:199::1"
  /// The root netns end of the root↔node link, where the Kubernetes API test server listens.
  public let hostSideIP: String
  public let nodeSideIP: String
  /// Pod-side interface prefix for `--host-interface=<prefix>+`.
  public let podInterfacePrefix: String
  private var pods: [String: (index: Int, ip: String)] = [:]
  private var nextIndex = 1

  /// - Parameter podInterfacePrefix: Names pods' veths on the node (`cali` for the seed's
  ///   `--host-interface=cali+`); by default one of this lab's own.
  public init(podInterfacePrefix: String? = nil) throws {
    let id = String(Int.random(in: 100...999))
    self.id = id
    node = "ke2e\(id)node"
    self.podInterfacePrefix = podInterfacePrefix ?? "kp\(id)"
    let octet = Int(id)! % 250 + 1
    hostSideIP = "10.198.\(octet).1"
    nodeSideIP = "10.198.\(octet).2"
    do {
      try setUpNode()
    } catch {
      _ = try? Shell.run("ip netns del ke2e\(id)node; ip link del kr\(id) 2>/dev/null")
      throw error
    }
  }

  private func setUpNode() throws {
    try sh(
      """
      ip netns add \(node)
      ip netns exec \(node) ip link set lo up
      ip link add kr\(id) type veth peer name kn\(id)
      ip link set kn\(id) netns \(node)
      ip addr add \(hostSideIP)/30 dev kr\(id)
      ip link set kr\(id) up
      ip netns exec \(node) ip addr add \(nodeSideIP)/30 dev kn\(id)
      ip netns exec \(node) ip link set kn\(id) up
      ip netns exec \(node) ip addr add \(nodeIP)/32 dev lo
      ip netns exec \(node) ip addr add 169.254.169.254/32 dev lo
      ip netns exec \(node) ip -6 addr add \(nodeIPv6)/128 dev lo nodad
      ip netns exec \(node) ip -6 addr add fd00:ec2::254/128 dev lo nodad
      ip route replace \(nodeIP)/32 via \(nodeSideIP) dev kr\(id)
      """)
  }

  /// Removes every namespace and link this lab made.
  public func tearDown() {
    for name in pods.keys { _ = try? Shell.run("ip netns del \(podNamespace(name))") }
    _ = try? Shell.run("ip netns del \(node); ip link del kr\(id) 2>/dev/null")
  }

  private func sh(_ script: String) throws {
    let result = try Shell.run("set -e\n" + script)
    guard result.status == 0 else { throw TestSupportError("network setup failed: \(result.output)") }
  }

  public func podNamespace(_ name: String) -> String { "ke2e\(id)\(name)" }

  /// Creates a pod netns with a fresh veth (a new MAC). `ip` reuses an address (IP reuse).
  @discardableResult
  public func addPod(_ name: String, ip: String? = nil) throws -> String {
    let index = nextIndex
    nextIndex += 1
    let address = ip ?? "10.200.\(index).2"
    let subnet = address.split(separator: ".").prefix(3).joined(separator: ".")
    let ns = podNamespace(name)
    let veth = "\(podInterfacePrefix)\(index)"
    try sh(
      """
      ip netns add \(ns)
      ip netns exec \(ns) ip link set lo up
      ip netns exec \(node) ip link add \(veth) type veth peer name eth0 netns \(ns)
      ip netns exec \(node) ip addr add \(subnet).1/32 dev \(veth) 2>/dev/null || true
      ip netns exec \(node) ip link set \(veth) up
      ip netns exec \(node) ip route replace \(address)/32 dev \(veth)
      ip netns exec \(ns) ip addr add \(address)/24 dev eth0
      ip netns exec \(ns) ip link set eth0 up
      ip netns exec \(ns) ip route add default via \(subnet).1 dev eth0
      """)
    pods[name] = (index, address)
    return address
  }

  /// Creates a dual-stack pod: ``addPod(_:ip:)`` plus fd00:200:<index>::2/64 on its eth0 and an
  /// IPv6 default route via the node. Returns both addresses, as `status.podIPs` lists them.
  @discardableResult
  public func addDualStackPod(_ name: String) throws -> (ipv4: String, ipv6: String) {
    let ipv4 = try addPod(name)
    let index = pods[name]!.index
    let ipv6 = "fd00:200:\(index)::2"
    try sh(
      """
      ip netns exec \(node) ip -6 addr add fd00:200:\(index)::1/64 dev \(podInterfacePrefix)\(index) nodad
      ip netns exec \(podNamespace(name)) ip -6 addr add \(ipv6)/64 dev eth0 nodad
      ip netns exec \(podNamespace(name)) ip -6 route add default via fd00:200:\(index)::1 dev eth0
      """)
    return (ipv4, ipv6)
  }

  /// Deletes a pod netns (its veth goes with it), freeing its IP for another pod.
  public func removePod(_ name: String) {
    guard pods.removeValue(forKey: name) != nil else { return }
    _ = try? Shell.run("ip netns del \(podNamespace(name))")
  }

  /// A shell command line running `command` inside the pod, with a clean AWS environment (no keys,
  /// no config files, no endpoint override: the SDK talks to 169.254.169.254 like in a real pod).
  public func inPod(_ name: String, _ command: String) -> String {
    "ip netns exec \(podNamespace(name)) env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN "
      + "-u AWS_PROFILE -u AWS_EC2_METADATA_SERVICE_ENDPOINT AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null "
      + "AWS_DEFAULT_REGION=us-east-1 sh -c \(Shell.quote(command))"
  }

  /// The argument vector that runs a program inside the pod with the clean AWS environment of
  /// ``inPod(_:_:)`` plus `environment` (for long-running clients such as ``SDKClient``).
  public func podPrefix(_ name: String, environment: [String: String] = [:]) -> [String] {
    ["/usr/sbin/ip", "netns", "exec", podNamespace(name), "/usr/bin/env"]
      + [
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
      ]
      .flatMap { ["-u", $0] }
      + ["AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_CONFIG_FILE=/dev/null", "AWS_DEFAULT_REGION=us-east-1"]
      + environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
  }

  /// Runs a command in a pod and returns its output.
  public func run(inPod name: String, _ command: String) throws -> (status: Int32, output: String) {
    try Shell.run(inPod(name, command))
  }

  /// Runs a command in the node netns.
  public func run(onNode command: String) throws -> (status: Int32, output: String) {
    try Shell.run("ip netns exec \(node) sh -c \(Shell.quote(command))")
  }
}
