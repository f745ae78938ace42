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
      family: family, purpose: .connectionRate(perSecond: perSecond, burst: burst), interface: interface, host: host,
      port: port)
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
        + ["-m", "comment", "--comment", comment, "-j", "DNAT", "--to-destination", destination]
    case .connectionRate(let perSecond, let burst):
      return ["-p", "tcp", "-d", hostAddress, "--dport", "\(port)"] + interfaceMatch
        + [
          "--syn", "-m", "hashlimit", "--hashlimit-above", "\(perSecond)/sec", "--hashlimit-burst", "\(burst)",
          "--hashlimit-mode", "srcip", "--hashlimit-name", Self.hashlimitName(perSecond: perSecond, burst: burst),
          "-m", "comment", "--comment", comment, "-j", "REJECT", "--reject-with", "tcp-reset",
        ]
    }
  }

  /// `kiam-` and a hash of the rate: hashlimit rules of one name share one table, with the
  /// parameters of the rule that created it, so a rule with another rate needs another name
  /// (at most 15 characters).
  static func hashlimitName(perSecond: Int, burst: Int) -> String {
    var hash: UInt32 = 2_166_136_261
    for byte in "\(perSecond)/\(burst)".utf8 {
      hash = (hash ^ UInt32(byte)) &* 16_777_619
    }
    let hex = String(hash, radix: 16)
    return "kiam-" + String(repeating: "0", count: 8 - hex.count) + hex
  }

  /// The comment that marks the rule as ours.
  var comment: String {
    purpose == .redirect ? "kiam agent: EC2 metadata to the agent" : "kiam agent: new connections per pod"
  }

  /// `-S` of the rule's chain.
  var listArguments: [String] { ["-w", "5", "-t", table, "-S", chain] }

  /// Delete arguments for every rule of `listing` (`-S` output of the chain) that carries this
  /// rule's comment but is not this rule: what an agent with other flags (another port, another
  /// rate) left with `--no-iptables-remove`. A stale rate rule would otherwise keep its
  /// parameters: hashlimit rules of one name share one table, set up by the first.
  func staleDeleteArguments(in listing: String) -> [[String]] {
    let mine = Self.keyOptions(specification)
    return listing.split(whereSeparator: \.isNewline).compactMap { line -> [String]? in
      let words = Self.shellWords(String(line))
      guard words.count > 2, words[0] == "-A", words[1] == chain, words.contains(comment) else { return nil }
      return Self.keyOptions(Array(words.dropFirst(2))) == mine
        ? nil : ["-w", "5", "-t", table, "-D"] + words.dropFirst()
    }
  }

  /// The options that tell one of our rules from another, from a specification or an `-S` line
  /// (which adds `-m tcp` and spells `--syn` out, so whole lines never compare equal).
  static func keyOptions(_ words: [String]) -> [String: String] {
    let keys: Set<String> = ["-d", "--dport", "-i", "--to-destination", "--hashlimit-above", "--hashlimit-burst"]
    var options: [String: String] = [:]
    for index in words.indices.dropLast() where keys.contains(words[index]) {
      let negated = index > 0 && words[index - 1] == "!"
      options[(negated ? "!" : "") + words[index]] = words[index + 1]
    }
    return options
  }

  /// Splits an `iptables -S` line into its words (double quotes group, as iptables prints comments).
  static func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var current = ""
    var quoted = false
    var started = false
    for character in line {
      switch character {
      case "\"":
        quoted.toggle()
        started = true
      case " " where !quoted:
        if started { words.append(current) }
        current = ""
        started = false
      default:
        current.append(character)
        started = true
      }
    }
    if started { words.append(current) }
    return words
  }

  /// `-w` waits for the xtables lock instead of failing when another program holds it.
  var checkArguments: [String] { ["-w", "5", "-t", table, "-C", chain] + specification }
  var insertArguments: [String] { ["-w", "5", "-t", table, "-I", chain, "1"] + specification }
  var deleteArguments: [String] { ["-w", "5", "-t", table, "-D", chain] + specification }
}
