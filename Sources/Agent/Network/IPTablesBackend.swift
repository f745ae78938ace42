import KiamShared

/// Which iptables the DNAT rule is written with: the kernel has two rule sets, and a rule in the
/// one the node's other rules (kube-proxy, the CNI) do not use lands out of their order.
///
/// kiam v3.2's Alpine image used legacy iptables; Debian's (ours) defaults to nft. `auto` decides
/// as Kubernetes' iptables-wrapper (kube-proxy's image) does: the backend holding kubelet's hint
/// chains (`KUBE-IPTABLES-HINT`, `KUBE-KUBELET-CANARY` in `mangle`), else the one holding more
/// rules, else nft.
public enum IPTablesBackend: String, Sendable, CaseIterable {
  case nft
  case legacy

  /// The program for a family, e.g. `iptables-legacy` or `ip6tables-nft`.
  func binary(_ family: IPTablesRule.Family) -> String {
    "\(family == .ipv4 ? "iptables" : "ip6tables")-\(rawValue)"
  }

  /// The `--iptables-backend` choice.
  public enum Choice: Sendable, Equatable {
    case auto
    case forced(IPTablesBackend)

    /// Parses `auto`, `nft` or `legacy`.
    public static func parse(_ text: String) -> Choice? {
      if text == "auto" { return .auto }
      return IPTablesBackend(rawValue: text).map { .forced($0) }
    }
  }

  /// A decision and why it was made (logged once at start).
  struct Decision: Sendable, Equatable {
    let backend: IPTablesBackend
    let reason: String
  }

  /// kubelet (1.17 and later) creates one of these in the backend the node uses.
  static let hintChains = [":KUBE-IPTABLES-HINT ", ":KUBE-KUBELET-CANARY "]

  /// Decides from the `-save` output of each backend (IPv4 and IPv6 concatenated).
  static func decide(saved: [IPTablesBackend: String]) -> Decision {
    for backend in [IPTablesBackend.nft, .legacy] {
      if let text = saved[backend], let chain = hintChains.first(where: { text.contains($0) }) {
        return Decision(
          backend: backend,
          reason: "kubelet's \(chain.dropFirst().dropLast()) chain is in the \(backend.rawValue) tables")
      }
    }
    let counts = Dictionary(uniqueKeysWithValues: allCases.map { ($0, ruleCount(saved[$0] ?? "")) })
    let nft = counts[.nft] ?? 0
    let legacy = counts[.legacy] ?? 0
    let tally = "\(legacy) rules in legacy, \(nft) in nft"
    if legacy > nft { return Decision(backend: .legacy, reason: "the legacy tables hold the node's rules (\(tally))") }
    if nft > legacy { return Decision(backend: .nft, reason: "the nft tables hold the node's rules (\(tally))") }
    return Decision(backend: .nft, reason: "no backend holds more rules (\(tally)): nft, the default")
  }

  /// Rules (`-A …` lines) in `iptables-save` output.
  static func ruleCount(_ saved: String) -> Int {
    saved.split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
  }

  /// Looks at the node's IPv4 and IPv6 tables with `ip(6)tables-{nft,legacy}-save`, which list
  /// the tables that exist and create none (unlike `-t mangle`).
  /// - Parameters:
  ///   - find: Locates a program (nil when it is not installed).
  ///   - run: Runs a program and returns its standard output (nil when it failed).
  static func detect(find: (String) -> String?, run: (String) async -> String?) async -> Decision {
    var saved: [IPTablesBackend: String] = [:]
    for backend in allCases {
      var text = ""
      for family in [IPTablesRule.Family.ipv4, .ipv6] {
        guard let path = find(backend.binary(family) + "-save"), let output = await run(path) else { continue }
        text += output
      }
      saved[backend] = text
    }
    return decide(saved: saved)
  }
}
