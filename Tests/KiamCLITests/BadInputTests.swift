import Foundation
import KiamTestSupport
import Testing

/// Bad input ends the real binary with status 1 and exactly one line naming the flag and problem.
@Suite(.serialized) struct BadInputTests {
  struct Case: Sendable, CustomTestStringConvertible {
    let name: String
    let arguments: @Sendable (TestPKIFixture) -> [String]
    let expected: [String]
    var testDescription: String { name }
  }

  static func server(_ pki: TestPKIFixture) -> [String] {
    [
      "server", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
      "--role-base-arn=arn:aws:iam::123456789012:role/",
    ]
  }

  static func agent(_ pki: TestPKIFixture) -> [String] {
    ["agent", "--cert=\(pki.agent.certificate)", "--key=\(pki.agent.key)", "--ca=\(pki.agent.ca)", "--host=10.0.0.1"]
  }

  static let cases: [Case] = [
    Case(name: "unknown flag", arguments: { server($0) + ["--bogus-flag=1"] }, expected: ["--bogus-flag"]),
    Case(
      name: "unknown subcommand flag on agent", arguments: { agent($0) + ["--role-base-arn=x"] },
      expected: ["--role-base-arn"]),
    Case(
      name: "missing --cert file",
      arguments: { pki in
        [
          "server", "--cert=/nonexistent/server.pem", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
          "--role-base-arn-autodetect",
        ]
      }, expected: ["--cert", "/nonexistent/server.pem", "does not exist"]),
    Case(
      name: "unreadable --key (a directory)",
      arguments: { pki in
        [
          "server", "--cert=\(pki.server.certificate)", "--key=\(pki.directory)", "--ca=\(pki.server.ca)",
          "--role-base-arn-autodetect",
        ]
      }, expected: ["--key", "is a directory"]),
    Case(
      name: "missing --ca",
      arguments: { pki in
        ["health", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)"]
      }, expected: ["--ca", "required"]),
    Case(
      name: "--ca file not PEM",
      arguments: { pki in
        ["health", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.directory)/garbage.txt"]
      }, expected: ["--ca", "garbage.txt"]),
    Case(name: "bad duration", arguments: { server($0) + ["--sync=soon"] }, expected: ["--sync", "invalid duration"]),
    Case(
      name: "bad duration on health",
      arguments: { pki in
        [
          "health", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
          "--timeout=5",
        ]
      }, expected: ["--timeout", "invalid duration"]),
    Case(
      name: "invalid regexp", arguments: { agent($0) + ["--allow-route-regexp=(unclosed"] },
      expected: ["--allow-route-regexp"]),
    Case(
      name: "session-duration below 15m", arguments: { server($0) + ["--session-duration=10m"] },
      expected: ["--session-duration", "at least 15 minutes"]),
    Case(
      name: "session-refresh not below session-duration",
      arguments: {
        server($0) + ["--session-duration=30m", "--session-refresh=30m"]
      }, expected: ["--session-refresh", "below --session-duration"]),
    Case(
      name: "server-address without port", arguments: { agent($0) + ["--server-address=kiam-server"] },
      expected: ["--server-address", "missing port"]),
    // Accepted from kiam's manifests and not used by the agent, but still checked.
    Case(
      name: "agent gateway-timeout-creation not a duration",
      arguments: { agent($0) + ["--gateway-timeout-creation=soon"] },
      expected: ["--gateway-timeout-creation"]),
    Case(
      name: "health server-address without port",
      arguments: { pki in
        [
          "health", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
          "--server-address=127.0.0.1",
        ]
      }, expected: ["--server-address", "missing port"]),
    Case(
      name: "agent without host",
      arguments: { pki in
        ["agent", "--cert=\(pki.agent.certificate)", "--key=\(pki.agent.key)", "--ca=\(pki.agent.ca)"]
      }, expected: ["--host", "HOST_IP"]),
    Case(
      name: "host not an IP", arguments: { agent($0) + ["--host=node-1.example"] },
      expected: ["--host", "\"node-1.example\" is not an IP address", "status.podIPs"]),
    Case(
      name: "host with two IPv4 addresses", arguments: { agent($0) + ["--host=10.0.0.1,10.0.0.2"] },
      expected: ["--host", "two IPv4 addresses"]),
    Case(
      name: "host with an empty part", arguments: { agent($0) + ["--host=10.0.0.1,"] },
      expected: ["--host", "\"\" is not an IP address"]),
    Case(
      name: "host in brackets", arguments: { agent($0) + ["--host=[fd00::1]"] },
      expected: ["--host", "\"[fd00::1]\" is not an IP address"]),
    Case(
      name: "no role base arn",
      arguments: { pki in
        ["server", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)"]
      }, expected: ["role-base-arn not specified and not auto-detected"]),
    Case(
      name: "role base arn without slash",
      arguments: { pki in
        [
          "server", "--cert=\(pki.server.certificate)", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)",
          "--role-base-arn=arn:aws:iam::123456789012:role",
        ]
      }, expected: ["--role-base-arn", "ending in '/'"]),
    Case(name: "bad level", arguments: { server($0) + ["--level=verbose"] }, expected: ["--level", "verbose"]),
    Case(name: "bad port", arguments: { agent($0) + ["--port=70000"] }, expected: ["--port", "70000"]),
    Case(
      name: "bad iptables-backend", arguments: { agent($0) + ["--iptables-backend=xtables"] },
      expected: ["--iptables-backend", "want auto, nft or legacy"]),
    Case(
      name: "bad permitted-regexp-mode", arguments: { server($0) + ["--permitted-regexp-mode=v5"] },
      expected: ["--permitted-regexp-mode", "want v4 or v3"]),
    Case(name: "no subcommand", arguments: { _ in [] }, expected: ["expected command but got none"]),
    Case(
      name: "bad max-connections-per-ip", arguments: { agent($0) + ["--max-connections-per-ip=0"] },
      expected: ["--max-connections-per-ip", "1...4096"]),
    Case(
      name: "bad max-new-connections-per-ip", arguments: { agent($0) + ["--max-new-connections-per-ip=lots"] },
      expected: ["--max-new-connections-per-ip", "0...100000"]),
    Case(
      name: "--cert with trailing garbage",
      arguments: { pki in
        ["health", "--cert=\(pki.directory)/cert-with-garbage.pem", "--key=\(pki.server.key)", "--ca=\(pki.server.ca)"]
      }, expected: ["--cert", "cert-with-garbage.pem", "unexpected data after the last PEM block"]),
  ]

  @Test(arguments: cases)
  func badInputExitsOneWithOneLine(_ testCase: Case) async throws {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let pki = try TestPKIFixture.make(in: dir.path)
    try dir.write("garbage.txt", "not a certificate")
    try dir.write(
      "cert-with-garbage.pem",
      (try String(contentsOfFile: pki.server.certificate, encoding: .utf8)) + "-----BEGIN CERTIFICATE-----\nMIIB\n")
    let environment = ProcessInfo.processInfo.environment.filter { $0.key != "HOST_IP" }
    let result = try await KiamProcess.run(testCase.arguments(pki), environment: environment, timeout: .seconds(20))
    #expect(result.status == 1, "status for \(testCase.name): \(result.stderr)")
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: true)
    #expect(lines.count == 1, "expected one line, got: \(result.stderr)")
    for text in testCase.expected {
      #expect(result.stderr.contains(text), "\(testCase.name): \(text) not in \(result.stderr)")
    }
  }

  @Test func versionPrints() async throws {
    let result = try await KiamProcess.run(["version"])
    #expect(result.status == 0)
    #expect(!result.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
  }

  @Test func helpExitsZero() async throws {
    let result = try await KiamProcess.run(["server", "--help"])
    #expect(result.status == 0)
    #expect(result.stdout.contains("--role-base-arn"))
  }
}
