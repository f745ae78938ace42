import Foundation
import KiamTestSupport
import Testing

/// The agent's DNAT rule in a private network namespace (root only; skipped with a reason else).
@Suite(
  .serialized, .enabled(if: NetworkNamespace.unavailableReason == nil, "\(NetworkNamespace.unavailableReason ?? "")"))
struct IPTablesNamespaceTests {
  func agent(in ns: NetworkNamespace, pki: TestPKIFixture, port: Int, extra: [String] = [], env: String = "") throws
    -> KiamProcess
  {
    try KiamProcess(
      [
        "-c",
        "exec ip netns exec \(ns.name) env \(env) \(KiamProcess.binaryPath) agent --iptables --host-interface=veth+ --host=10.99.0.1 --port=\(port) --server-address=127.0.0.1:1 --iptables-check-interval=300ms "
          + pki.agent.arguments.joined(separator: " ") + " " + extra.joined(separator: " "),
      ],
      executable: "/bin/sh")
  }

  /// The agent's rule for `--host-interface=veth+ --host=10.99.0.1 --port=18186`, in iptables syntax.
  static let agentRule =
    "-p tcp -d 169.254.169.254/32 --dport 80 -i veth+ -m comment --comment 'kiam agent: EC2 metadata to the agent' -j DNAT --to-destination 10.99.0.1:18186"

  /// Runs `body` with a fresh network namespace and a PKI (in a temporary directory), removed after.
  func withNamespace(_ body: (NetworkNamespace, TemporaryDirectory, TestPKIFixture) async throws -> Void) async throws {
    let ns = try NetworkNamespace()
    defer { ns.delete() }
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    try await body(ns, dir, try TestPKIFixture.make(in: dir.path))
  }

  func rules(_ ns: NetworkNamespace) throws -> [String] {
    try ns.run("iptables -t nat -S PREROUTING").output.split(separator: "\n").map(String.init).filter {
      $0.hasPrefix("-A")
    }
  }

  @Test func insertedFirstRestoredAndRemoved() async throws {
    try await withNamespace { ns, dir, pki in
      try ns.run("iptables -t nat -A PREROUTING -p tcp --dport 81 -j ACCEPT")
      let process = try agent(in: ns, pki: pki, port: 18181)
      let expected =
        "-d 169.254.169.254/32 -i veth+ -p tcp -m tcp --dport 80 -m comment --comment \"kiam agent: EC2 metadata to the agent\" -j DNAT --to-destination 10.99.0.1:18181"
      let current = (try? rules(ns)) ?? []
      #expect(
        await eventually { (try? rules(ns).first) == "-A PREROUTING \(expected)" },
        "\(current) \(process.standardError)")
      #expect(try rules(ns).count == 2)
      // Someone deletes it: put back (at the top) within the check interval.
      try ns.run("iptables -t nat -D PREROUTING \(expected)")
      #expect(try rules(ns).count == 1)
      #expect(await eventually { (try? rules(ns).first) == "-A PREROUTING \(expected)" })
      #expect(process.standardError.contains("iptables rule was missing, restored it"))
      // On exit it is removed (the default).
      process.signal(SIGTERM)
      #expect(await process.wait(timeout: .seconds(10)) == 0)
      #expect(try rules(ns) == ["-A PREROUTING -p tcp -m tcp --dport 81 -j ACCEPT"])
    }
  }

  @Test func keptWithNoIptablesRemoveAndNeverDuplicated() async throws {
    try await withNamespace { ns, dir, pki in
      let first = try agent(in: ns, pki: pki, port: 18182, extra: ["--no-iptables-remove"])
      #expect(await eventually { (try? rules(ns).count) == 1 })
      first.signal(SIGTERM)
      #expect(await first.wait(timeout: .seconds(10)) == 0)
      #expect(try rules(ns).count == 1)  // kept: pods keep being sent to the (absent) agent, failing closed
      let second = try agent(in: ns, pki: pki, port: 18182, extra: ["--no-iptables-remove"])
      try await Task.sleep(for: .milliseconds(800))
      #expect(try rules(ns).count == 1)  // idempotent
      second.signal(SIGTERM)
      _ = await second.wait(timeout: .seconds(10))
    }
  }

  /// A node whose other rules are in one backend: the rule goes there, and the log says why.
  /// `seed` runs in the namespace before the agent starts; `expected` is the backend the rule must
  /// land in. A rule an earlier agent left in the other backend (`--no-iptables-remove`) is removed.
  @Test(arguments: [
    (
      "kube-proxy on legacy",
      "iptables-legacy -t nat -N KUBE-SERVICES && iptables-legacy -t nat -A PREROUTING -j KUBE-SERVICES && iptables-legacy -t nat -A OUTPUT -j KUBE-SERVICES && iptables-legacy -t nat -A OUTPUT -p udp -j KUBE-SERVICES",
      "", "legacy"
    ),
    (
      "a stale rule in nft",
      "iptables-legacy -t nat -N KUBE-SERVICES && iptables-legacy -t nat -A PREROUTING -j KUBE-SERVICES && iptables-legacy -t nat -A OUTPUT -j KUBE-SERVICES && iptables-nft -t nat -I PREROUTING 1 \(Self.agentRule)",
      "", "legacy"
    ),
    (
      "kube-proxy on nft", "iptables-nft -t nat -N KUBE-SERVICES && iptables-nft -t nat -A PREROUTING -j KUBE-SERVICES",
      "", "nft"
    ),
    (
      "kubelet's hint in legacy",
      "iptables-legacy -t mangle -N KUBE-KUBELET-CANARY && iptables-nft -A INPUT -p tcp --dport 22 -j ACCEPT && iptables-nft -A INPUT -p tcp --dport 23 -j ACCEPT",
      "", "legacy"
    ),
    ("an empty node", "true", "", "nft"),
    (
      "forced", "iptables-nft -t nat -N KUBE-SERVICES && iptables-nft -t nat -A PREROUTING -j KUBE-SERVICES",
      "--iptables-backend=legacy", "legacy"
    ),
  ])
  func ruleGoesToTheBackendTheNodeUses(_ name: String, _ seed: String, _ flag: String, _ expected: String) async throws
  {
    try await withNamespace { ns, dir, pki in
      let seeded = try ns.run(seed)
      #expect(seeded.status == 0, "\(seeded.output)")
      let process = try agent(in: ns, pki: pki, port: 18186, extra: flag.isEmpty ? [] : [flag])
      let other = expected == "legacy" ? "nft" : "legacy"
      func rules(_ backend: String) -> [String] {
        ((try? ns.run("iptables-\(backend) -t nat -S PREROUTING 2>/dev/null").output) ?? "").split(separator: "\n")
          .map(String.init).filter { $0.contains("kiam agent") }
      }
      #expect(await eventually { rules(expected).count == 1 }, "\(name): \(process.standardError)")
      #expect(rules(other).isEmpty, "\(name): a rule in \(other)")
      #expect(process.standardError.contains("iptables backend: \(expected)"), "\(process.standardError)")
      process.signal(SIGTERM)
      #expect(await process.wait(timeout: .seconds(10)) == 0)
      #expect(rules(expected).isEmpty, "\(name): the rule stayed after exit")
    }
  }

  /// A dual-stack `--host`: the agent serves its first family's pods while the other family's
  /// redirect cannot be added, and `/health?deep` (what a readiness probe asks) is not ready while
  /// any redirect is missing. The tools refuse inserts while a file `refuse-ipv4` or `refuse-ipv6`
  /// exists: first the IPv6 rule cannot be added at start, then the IPv4 one (the first address's)
  /// is deleted and cannot be put back. Ready again (here: only the missing server left to
  /// report) once every rule is in place.
  @Test func deepHealthIsNotReadyWhileARedirectIsMissing() async throws {
    try await withNamespace { ns, dir, pki in
      for (tool, family) in [("iptables-nft", "ipv4"), ("ip6tables-nft", "ipv6")] {
        let wrapper = try dir.write(
          "bin/\(tool)",
          """
          #!/bin/sh
          case "$*" in *"-t nat -I PREROUTING"*) [ -e \(dir.path)/refuse-\(family) ] && { echo "\(tool): refused by the test" >&2; exit 1; } ;; esac
          exec /usr/sbin/\(tool) "$@"
          """)
        try Shell.run("chmod 755 \(wrapper)")
      }
      try Shell.run("touch \(dir.path)/refuse-ipv6")
      let process = try agent(
        in: ns, pki: pki, port: 18187, extra: ["--iptables-backend=nft", "--host=10.99.0.1,fd00:99::1"],
        env: "PATH=\(dir.path)/bin:/usr/sbin:/usr/bin:/sbin:/bin")
      func health() -> String {
        (try? ns.run("curl -s --max-time 2 -w ' %{http_code}' 'http://127.0.0.1:18187/health?deep=1'").output) ?? ""
      }
      func ipv6Rules() -> Int {
        ((try? ns.run("ip6tables-nft -t nat -S PREROUTING").output) ?? "").split(separator: "\n").filter {
          $0.contains("kiam agent")
        }.count
      }
      // IPv6 refused from the start: the agent runs, with its IPv4 rule, and is not ready.
      #expect(
        await eventually { (try? rules(ns).count) == 1 && health().hasSuffix(" 503") },
        "\(health()) \(process.standardError)")
      #expect(
        health().contains("not ready: the iptables rule is not in place")
          && health().contains("ip6tables-nft: refused by the test"), "\(health())")
      #expect(process.isRunning && ipv6Rules() == 0)
      #expect(process.standardError.contains("cannot add the ip6tables rule"), "\(process.standardError)")
      try Shell.run("rm \(dir.path)/refuse-ipv6")
      #expect(await eventually { ipv6Rules() == 1 && health().contains("no kiam server reachable") }, "\(health())")

      // The first address's rule goes and cannot be put back, while the IPv6 one is fine.
      try Shell.run("touch \(dir.path)/refuse-ipv4")
      #expect(try ns.run("iptables-nft -t nat -D PREROUTING 1").status == 0)
      #expect(await eventually { health().hasSuffix(" 503") }, "\(health())")
      #expect(health().contains("iptables-nft: refused by the test"), "\(health())")
      #expect(ipv6Rules() == 1 && process.isRunning)
      try Shell.run("rm \(dir.path)/refuse-ipv4")
      #expect(await eventually { (try? rules(ns).count) == 1 && !health().hasSuffix(" 503") }, "\(health())")
      process.signal(SIGTERM)
      #expect(await process.wait(timeout: .seconds(10)) == 0)
      #expect(try ipv6Rules() == 0 && rules(ns).isEmpty)
    }
  }

  @Test func invertedInterface() async throws {
    try await withNamespace { ns, dir, pki in
      let process = try KiamProcess(
        [
          "-c",
          "exec ip netns exec \(ns.name) \(KiamProcess.binaryPath) agent --iptables --host-interface=!eth0 --host=10.99.0.1 --port=18183 --server-address=127.0.0.1:1 "
            + pki.agent.arguments.joined(separator: " "),
        ],
        executable: "/bin/sh")
      #expect(await eventually { (try? rules(ns).first?.contains("! -i eth0")) == true })
      process.signal(SIGTERM)
      _ = await process.wait(timeout: .seconds(10))
    }
  }

  @Test func missingBinaryIsOneClearError() async throws {
    try await withNamespace { ns, dir, pki in
      try Shell.run("chmod 755 \(dir.path) && chmod 644 \(dir.path)/*")
      // No iptables on PATH.
      let noBinary = try agent(in: ns, pki: pki, port: 18184, env: "PATH=/nonexistent")
      #expect(await noBinary.wait(timeout: .seconds(10)) == 1)
      #expect(noBinary.standardError.contains("iptables not found"), "\(noBinary.standardError)")
    }
  }

  /// Not allowed to change the firewall (no NET_ADMIN): one clear error.
  @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "setpriv (util-linux) missing"))
  func withoutNetAdminIsOneClearError() async throws {
    try await withNamespace { ns, dir, pki in
      try Shell.run("chmod 755 \(dir.path) && chmod 644 \(dir.path)/*")
      let unprivileged = try KiamProcess(
        [
          "-c",
          "exec ip netns exec \(ns.name) setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all \(KiamProcess.binaryPath) agent --iptables --host-interface=veth+ --host=10.99.0.1 --port=18185 --server-address=127.0.0.1:1 "
            + pki.agent.arguments.joined(separator: " "),
        ],
        executable: "/bin/sh")
      #expect(await unprivileged.wait(timeout: .seconds(15)) == 1)
      #expect(unprivileged.standardError.contains("NET_ADMIN"), "\(unprivileged.standardError)")
      #expect(unprivileged.standardError.split(separator: "\n").filter { $0.contains("level=fatal") }.count == 1)
    }
  }
}
