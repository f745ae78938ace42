import Foundation
import KiamShared
import KiamTestSupport
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KiamAgent

@Suite struct IPTablesRuleTests {
  @Test func rendersKiamsRuleInserted() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181)
    #expect(rule.binary == "iptables")
    #expect(
      rule.insertArguments == [
        "-w", "5", "-t", "nat", "-I", "PREROUTING", "1", "-p", "tcp", "-d", "169.254.169.254/32", "--dport", "80", "-i",
        "cali+",
        "-m", "comment", "--comment", "kiam agent: EC2 metadata to the agent", "-j", "DNAT", "--to-destination",
        "10.0.0.5:8181",
      ])
    #expect(rule.checkArguments.prefix(6) == ["-w", "5", "-t", "nat", "-C", "PREROUTING"])
    #expect(rule.deleteArguments.prefix(6) == ["-w", "5", "-t", "nat", "-D", "PREROUTING"])
  }

  /// The kernel's share of the per-pod connection limit: new connections to the agent's port
  /// from pod interfaces beyond the rate get a reset, in filter INPUT (after the DNAT).
  @Test func rendersTheConnectionRateRule() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181).connectionRateLimit(
      perSecond: 500, burst: 1000)
    #expect(
      rule.insertArguments == [
        "-w", "5", "-t", "filter", "-I", "INPUT", "1", "-p", "tcp", "-d", "10.0.0.5/32", "--dport", "8181", "-i",
        "cali+",
        "--syn", "-m", "hashlimit", "--hashlimit-above", "500/sec", "--hashlimit-burst", "1000", "--hashlimit-mode",
        "srcip",
        "--hashlimit-name", IPTablesRule.hashlimitName(perSecond: 500, burst: 1000), "-m", "comment", "--comment",
        "kiam agent: new connections per pod",
        "-j", "REJECT", "--reject-with", "tcp-reset",
      ])
    #expect(IPTablesRule.hashlimitName(perSecond: 500, burst: 1000).count <= 15)
    #expect(
      IPTablesRule.hashlimitName(perSecond: 500, burst: 1000) != IPTablesRule.hashlimitName(perSecond: 50, burst: 100))
    #expect(IPTablesRule.hashlimitName(perSecond: 100_000, burst: 200_000).hasPrefix("kiam-"))
    let v6 = IPTablesRule.forHost("fd00::5", interface: "!eth0", port: 3100).connectionRateLimit(perSecond: 1, burst: 2)
    #expect(v6.binary == "ip6tables")
    #expect(v6.specification.prefix(9) == ["-p", "tcp", "-d", "fd00::5/128", "--dport", "3100", "!", "-i", "eth0"])
  }

  /// What an agent with other flags left (`--no-iptables-remove`) is found by its comment and
  /// deleted; our own rule and other programs' rules are kept.
  @Test func staleRulesOfOursAreFoundInTheListing() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181).connectionRateLimit(
      perSecond: 500, burst: 1000)
    let listing = """
      -P INPUT ACCEPT
      -A INPUT -d 10.0.0.5/32 -i cali+ -p tcp -m tcp --dport 8181 --tcp-flags FIN,SYN,RST,ACK SYN -m hashlimit --hashlimit-above 100/sec --hashlimit-burst 200 --hashlimit-mode srcip --hashlimit-name kiam-agent -m comment --comment "kiam agent: new connections per pod" -j REJECT --reject-with tcp-reset
      -A INPUT -p tcp -m comment --comment "someone else" -j ACCEPT
      """
    let stale = rule.staleDeleteArguments(in: listing)
    #expect(stale.count == 1)
    #expect(stale.first?.prefix(6) == ["-w", "5", "-t", "filter", "-D", "INPUT"])
    #expect(
      stale.first?.contains("100/sec") == true && stale.first?.contains("kiam agent: new connections per pod") == true)
    let dnat = IPTablesRule.forHost("10.0.0.5", interface: "cali+", port: 8181)
    let ours =
      "-A PREROUTING -d 169.254.169.254/32 -i cali+ -p tcp -m tcp --dport 80 -m comment --comment \"kiam agent: EC2 metadata to the agent\" -j DNAT --to-destination 10.0.0.5:8181"
    // Our current rule as -S prints it (other word order, `-m tcp`) is ours.
    #expect(dnat.staleDeleteArguments(in: ours).isEmpty)
    #expect(
      rule.staleDeleteArguments(
        in: listing.replacingOccurrences(of: "100/sec", with: "500/sec").replacingOccurrences(of: "200", with: "1000")
      ).isEmpty)
    #expect(dnat.staleDeleteArguments(in: ours.replacingOccurrences(of: "8181", with: "3100")).count == 1)
    #expect(IPTablesRule.shellWords("-A X --comment \"a b\" -j Y") == ["-A", "X", "--comment", "a b", "-j", "Y"])
  }

  @Test func invertedInterface() {
    let rule = IPTablesRule.forHost("10.0.0.5", interface: "!eth0", port: 3100)
    #expect(rule.specification.contains("!"))
    let index = rule.specification.firstIndex(of: "!")!
    #expect(Array(rule.specification[index...(index + 2)]) == ["!", "-i", "eth0"])
  }

  @Test func ipv6UsesIp6tablesAndTheIPv6MetadataAddress() {
    let rule = IPTablesRule.forHost("fd00::5", interface: "eth0", port: 3100)
    #expect(rule.binary == "ip6tables")
    #expect(rule.specification.contains("fd00:ec2::254/128"))
    #expect(rule.specification.last == "[fd00::5]:3100")
  }
}
