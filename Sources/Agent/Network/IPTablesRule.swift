/// One of the agent's iptables rules, rendered as command arguments.
///
/// - ``Purpose/redirect``: `nat PREROUTING -p tcp -d 169.254.169.254/32 --dport 80 -i <iface> -j
///   DNAT --to-destination HOST:PORT`, inserted at the top of PREROUTING (kiam appended it, and on
///   some nodes it then sat behind rules that never let it match, kiam #508).
/// - ``Purpose/connectionRate(perSecond:burst:)``: `filter INPUT -p tcp --syn -d HOST --dport
///   PORT -i <iface> -m hashlimit --hashlimit-above N/sec … -j REJECT --reject-with tcp-reset`: one
///   pod that opens connections faster than that gets resets from the kernel. Without it, a pod
///   reconnecting the moment each connection is closed fills the listen queue that every other
///   pod's connections wait in, and they wait for SYN retransmits (1 s and more).
struct IPTablesRule: Sendable, Equatable {
  enum Family: Sendable { case ipv4, ipv6 }

  enum Purpose: Sendable, Equatable {
    case redirect
    case connectionRate(perSecond: Int, burst: Int)
  }

  let family: Family
  var purpose: Purpose = .redirect
  /// `--host-interface`: a name, `cali+` style wildcard, or `!eth0` to invert.
  let interface: String
  /// The agent's address and port (`HOST_IP:--port`).
  let host: String
  let port: Int

  /// The rule for HOST_IP's family: 169.254.169.254 with iptables, fd00:ec2::254 with ip6tables.
  static func forHost(_ host: String, interface: String, port: Int) -> IPTablesRule {
    IPTablesRule(family: host.contains(":") ? .ipv6 : .ipv4, interface: interface, host: host, port: port)
  }

  /// The rule limiting how fast one pod opens connections to the agent (same family and interface).
  func connectionRateLimit(perSecond: Int, burst: Int) -> IPTablesRule {
    IPTablesRule(
      family: family, purpose: .connectionRate(perSecond: perSecond, burst: burst), interface: interface, host: host, port: port)
  }

  var binary: String { family == .ipv4 ? "iptables" : "ip6tables" }
  var metadataAddress: String { family == .ipv4 ? "169.254.169.254/32" : "fd00:ec2::254/128" }
  var destination: String { family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }
  var hostAddress: String { family == .ipv4 ? "\(host)/32" : "\(host)/128" }

  var table: String { purpose == .redirect ? "nat" : "filter" }
  var chain: String { purpose == .redirect ? "PREROUTING" : "INPUT" }

  private var interfaceMatch: [String] {
    interface.hasPrefix("!") ? ["!", "-i", String(interface.dropFirst())] : ["-i", interface]
  }

  /// The match and target, as `iptables -S` would print them (modulo ordering).
  var specification: [String] {
    switch purpose {
    case .redirect:
      return ["-p", "tcp", "-d", metadataAddress, "--dport", "80"] + interfaceMatch
        + ["-m", "comment", "--comment", "kiam agent: EC2 metadata to the agent", "-j", "DNAT", "--to-destination", destination]
    case .connectionRate(let perSecond, let burst):
      return ["-p", "tcp", "-d", hostAddress, "--dport", "\(port)"] + interfaceMatch
        + [
          "--syn", "-m", "hashlimit", "--hashlimit-above", "\(perSecond)/sec", "--hashlimit-burst", "\(burst)",
          "--hashlimit-mode", "srcip", "--hashlimit-name", "kiam-agent",
          "-m", "comment", "--comment", "kiam agent: new connections per pod",
          "-j", "REJECT", "--reject-with", "tcp-reset",
        ]
    }
  }

  /// `-w` waits for the xtables lock instead of failing when another program holds it.
  var checkArguments: [String] { ["-w", "5", "-t", table, "-C", chain] + specification }
  var insertArguments: [String] { ["-w", "5", "-t", table, "-I", chain, "1"] + specification }
  var deleteArguments: [String] { ["-w", "5", "-t", table, "-D", chain] + specification }
}
