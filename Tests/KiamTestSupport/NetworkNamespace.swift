import Foundation

/// A network namespace for tests that need root (iptables, veth pairs). Tests are disabled with
/// ``unavailableReason`` when not root or when the tools are missing.
public final class NetworkNamespace: Sendable {
  public let name: String

  /// Why namespace tests cannot run here, or nil when they can.
  public static let unavailableReason: String? = {
    guard getuid() == 0 else { return "not root" }
    for tool in ["/usr/sbin/ip", "/usr/sbin/iptables"] where !FileManager.default.isExecutableFile(atPath: tool) {
      if !FileManager.default.isExecutableFile(atPath: tool.replacingOccurrences(of: "/usr/sbin", with: "/sbin")) {
        return "\(tool) missing (apt-get install iproute2 iptables)"
      }
    }
    let probe = "kiamprobe\(getpid())"
    guard (try? Shell.run("ip netns add \(probe)"))?.status == 0 else { return "cannot create network namespaces" }
    _ = try? Shell.run("ip netns del \(probe)")
    return nil
  }()

  public init(prefix: String = "kiamt") throws {
    name = "\(prefix)\(getpid() % 10000)\(Int.random(in: 0..<100000))"
    let result = try Shell.run("ip netns add \(name) && ip netns exec \(name) ip link set lo up")
    guard result.status == 0 else { throw TestSupportError("ip netns add \(name): \(result.output)") }
  }

  /// Runs a shell command inside the namespace.
  @discardableResult
  public func run(_ command: String) throws -> (status: Int32, output: String) {
    try Shell.run("ip netns exec \(name) sh -c \(Shell.quote(command))")
  }

  public func delete() {
    _ = try? Shell.run("ip netns del \(name)")
  }
}

/// Runs shell commands for tests.
public enum Shell {
  @discardableResult
  public static func run(_ command: String) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", command]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitPolling()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
  }

  public static func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
