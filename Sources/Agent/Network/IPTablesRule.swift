/// The DNAT rule that sends pods' metadata traffic to the agent, rendered as command arguments.
///
/// `nat PREROUTING -p tcp -d 169.254.169.254/32 --dport 80 -i <iface> -j DNAT --to-destination
/// HOST:PORT`, inserted at the top of PREROUTING (kiam appended it, and on some nodes it then sat
/// behind rules that never let it match, kiam #508).
struct IPTablesRule: Sendable, Equatable {
  enum Family: Sendable { case ipv4, ipv6 }

  let family: Family
  /// `--host-interface`: a name, `cali+` style wildcard, or `!eth0` to invert.
  let interface: String
  /// The agent's address and port (`HOST_IP:--port`).
  let host: String
  let port: Int

  /// The rule for HOST_IP's family: 169.254.169.254 with iptables, fd00:ec2::254 with ip6tables.
  static func forHost(_ host: String, interface: String, port: Int) -> IPTablesRule {
    IPTablesRule(family: host.contains(":") ? .ipv6 : .ipv4, interface: interface, host: host, port: port)
  }

  var binary: String { family == .ipv4 ? "iptables" : "ip6tables" }
  var metadataAddress: String { family == .ipv4 ? "169.254.169.254/32" : "fd00:ec2::254/128" }
  var destination: String { family == .ipv4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

  /// The match and target, as `iptables -S` would print them (modulo ordering).
  var specification: [String] {
    var args = ["-p", "tcp", "-d", metadataAddress, "--dport", "80"]
    if interface.hasPrefix("!") {
      args += ["!", "-i", String(interface.dropFirst())]
    } else {
      args += ["-i", interface]
    }
    args += ["-m", "comment", "--comment", "kiam agent: EC2 metadata to the agent"]
    args += ["-j", "DNAT", "--to-destination", destination]
    return args
  }

  /// `-w` waits for the xtables lock instead of failing when another program holds it.
  var checkArguments: [String] { ["-w", "5", "-t", "nat", "-C", "PREROUTING"] + specification }
  var insertArguments: [String] { ["-w", "5", "-t", "nat", "-I", "PREROUTING", "1"] + specification }
  var deleteArguments: [String] { ["-w", "5", "-t", "nat", "-D", "PREROUTING"] + specification }
}
