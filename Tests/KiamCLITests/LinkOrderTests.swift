import Foundation
import KiamTestSupport
import Testing

/// scripts/link-order/order.py, which turns callgrind profiles of the agent and the server into
/// the function order the release build links with (scripts/build-release.sh), run on profiles
/// and an lld link map written in the formats callgrind and lld write them.
@Suite struct LinkOrderTests {
  static let script = KiamProcess.packageRoot + "/scripts/link-order/order.py"

  /// One line of an lld map: VMA, LMA, size, alignment, then the name indented by its level
  /// (0 output section, 1 input section, 2 symbol).
  static func mapLine(_ address: Int, _ size: Int, level: Int, _ name: String) -> String {
    let hex = { (value: Int) in String(value, radix: 16) }
    let pad = { (text: String, width: Int) in String(repeating: " ", count: max(0, width - text.count)) + text }
    return "\(pad(hex(address), 16)) \(pad(hex(address), 16)) \(pad(hex(size), 8)) \(pad("16", 5)) "
      + String(repeating: " ", count: 8 * level) + name
  }

  static func callgrind(dumpedAt trigger: String, _ functionLines: String) -> String {
    """
    # callgrind format
    version: 1
    creator: callgrind-3.19.0
    pid: 100
    part: 1

    desc: Trigger: \(trigger)

    positions: line
    events: Ir
    summary: 100

    ob=(1) /kiam
    fl=(1) ???
    \(functionLines)
    """
  }

  struct Run {
    let output: String
    let status: Int32
    let order: [String]
  }

  func runOrder(profiles: [String: String], map: [String], defined: [String]) throws -> Run {
    let directory = try TemporaryDirectory(prefix: "kiam-link-order")
    defer { directory.remove() }
    for (name, text) in profiles { try directory.write("profiles/\(name)", text) }
    let mapPath = try directory.write(
      "kiam.map",
      (["             VMA              LMA     Size Align Out     In      Symbol"] + map).joined(separator: "\n") + "\n"
    )
    let definedPath = try directory.write("defined.txt", defined.joined(separator: "\n") + "\n")
    let outPath = directory.path + "/kiam.order"
    let arguments = [
      Self.script, "--profiles", directory.path + "/profiles", "--map", mapPath,
      "--defined", definedPath, "--out", outPath,
    ]
    let (status, output) = try Shell.run("python3 " + arguments.map(Shell.quote).joined(separator: " "))
    let order = (try? String(contentsOfFile: outPath, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
    return Run(output: output, status: status, order: order)
  }

  /// A .text output section: one small section per function, one large section that is mostly
  /// cold (its hot function stays where it is) and one large section that is mostly hot.
  static let map: [String] = [
    mapLine(0x1000, 0x100, level: 0, ".rodata"),
    mapLine(0x1000, 0x40, level: 1, "/b/Agent.o:(.rodata)"),
    mapLine(0x1000, 0x40, level: 2, "rodata_symbol"),
    mapLine(0x10000, 0x20000, level: 0, ".text"),
    mapLine(0x10000, 0x40, level: 1, "/b/Agent.o:(.text.steady_agent)"),
    mapLine(0x10000, 0x40, level: 2, "steady_agent"),
    mapLine(0x10040, 0x40, level: 1, "/b/Server.o:(.text.steady_server)"),
    mapLine(0x10040, 0x40, level: 2, "steady_server"),
    mapLine(0x10080, 0x40, level: 1, "/b/Agent.o:(.text.start_fn)"),
    mapLine(0x10080, 0x40, level: 2, "start_fn"),
    mapLine(0x100c0, 0x40, level: 1, "/b/Agent.o:(.text.shutdown_fn)"),
    mapLine(0x100c0, 0x40, level: 2, "shutdown_fn"),
    mapLine(0x10100, 0x40, level: 1, "/b/Server.o:(.text.server_shutdown)"),
    mapLine(0x10100, 0x40, level: 2, "server_shutdown"),
    mapLine(0x11000, 0x8000, level: 1, "/lib/libswiftCore.a(Swift.o):(.text)"),
    mapLine(0x11000, 0x10, level: 2, "bulk_hot"),
    mapLine(0x11010, 0x7ff0, level: 2, "bulk_cold"),
    mapLine(0x19000, 0x5000, level: 1, "/lib/libdispatch.a(queue.c.o):(.text)"),
    mapLine(0x19000, 0x4000, level: 2, "shared_fn"),
    mapLine(0x1d000, 0x1000, level: 2, "dense_cold"),
  ]

  static let defined = [
    "steady_agent", "steady_server", "start_fn", "shutdown_fn", "server_shutdown",
    "bulk_hot", "bulk_cold", "shared_fn", "dense_cold",
  ]

  /// The agent starts at 1000 and the server at 2000; a dump 35 s or more after its process
  /// started is steady state. Names are compressed across the dumps of one process, and
  /// "cfn=" (a callee) counts as executed like "fn=".
  static let profiles: [String: String] = [
    "start.100": "1000\n",
    "callgrind.agent.100.1": callgrind(dumpedAt: "dump t1010", "fn=(1) start_fn\n0 5\nfn=(2) shared_fn\n0 5\n"),
    "callgrind.agent.100.2": callgrind(
      dumpedAt: "dump t1040",
      "fn=(3) steady_agent\n0 5\ncfn=(2)\ncalls=1 0\n0 5\nfn=(4) 0x0000000000401000\n0 1\nfn=(5) not_in_binary\n0 1\nfn=(6) bulk_hot\n0 1\n"
    ),
    "callgrind.agent.100": callgrind(dumpedAt: "Program termination", "fn=(7) shutdown_fn\n0 5\nfn=(3)\n0 1\n"),
    "start.200": "2000\n",
    "callgrind.server.200.1": callgrind(
      dumpedAt: "dump t2050", "fn=(1) steady_server\n0 5\nfn=(2) steady_agent\n0 5\n"),
    "callgrind.server.200": callgrind(dumpedAt: "Program termination", "fn=(3) server_shutdown\n0 5\n"),
  ]

  @Test func steadyStateFirstAgentBeforeServerThenStartUpAndShutdown() throws {
    let run = try runOrder(profiles: Self.profiles, map: Self.map, defined: Self.defined)
    #expect(run.status == 0, "\(run.output)")
    // Agent steady (steady_agent, shared_fn as a callee named in an earlier dump), server steady,
    // then the agent's start-up and shutdown, then the server's; each name once. Left out: the
    // unresolved address, the name the binary does not define, and bulk_hot, 16 bytes hot in a
    // 32 KiB section (moving it would bring 32 KiB of cold code into the hot region). shared_fn
    // moves its section along: 16 of its 20 KiB run.
    #expect(run.order == ["steady_agent", "shared_fn", "steady_server", "start_fn", "shutdown_fn", "server_shutdown"])
    #expect(run.output.contains("6 functions, 3 of them run in steady state; 1 left in place"), "\(run.output)")
  }

  @Test func refusesProfilesWithoutBothRoles() throws {
    let agentOnly = Self.profiles.filter { !$0.key.contains("server") && $0.key != "start.200" }
    let run = try runOrder(profiles: agentOnly, map: Self.map, defined: Self.defined)
    #expect(run.status != 0)
    #expect(run.output.contains("no agent or no server profile"), "\(run.output)")
    #expect(run.order.isEmpty)
  }

  @Test func refusesAnAgentProfileWithoutSteadyState() throws {
    // Every agent dump within 35 s of its start: the profile run was too short to be of use.
    var early = Self.profiles
    early["start.100"] = "1030\n"
    let run = try runOrder(profiles: early, map: Self.map, defined: Self.defined)
    #expect(run.status != 0)
    #expect(run.output.contains("no steady-state dump of the agent"), "\(run.output)")
  }

  @Test func theCommittedOrderIsWhatTheReleaseBuildLinksWith() throws {
    let root = KiamProcess.packageRoot
    let order = try String(contentsOfFile: root + "/scripts/link-order/kiam.order", encoding: .utf8)
      .split(separator: "\n")
    #expect(order.count > 1000, "the order names \(order.count) functions")
    #expect(Set(order).count == order.count, "a function is named twice")
    #expect(order.contains { $0.hasPrefix("$s9KiamAgent") }, "no function of the agent module in the order")
    #expect(order.contains { $0.hasPrefix("$s10KiamServer") }, "no function of the server module in the order")
    let script = try String(contentsOfFile: root + "/scripts/build-release.sh", encoding: .utf8)
    #expect(script.contains("--symbol-ordering-file=\"$order\""))
    #expect(script.contains("scripts/link-order/kiam.order"))
    let makefile = try String(contentsOfFile: root + "/Makefile", encoding: .utf8)
    #expect(makefile.contains("scripts/build-release.sh"))
    let dockerfile = try String(contentsOfFile: root + "/Dockerfile", encoding: .utf8)
    #expect(dockerfile.contains("RUN scripts/build-release.sh"))
  }
}
