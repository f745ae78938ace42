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
///
/// With posix_spawn rather than Foundation's `Process`: tests run many commands at once from
/// several threads, and `Process.run` crashed inside Foundation now and then when they did. The
/// output socket is close-on-exec, so a command started at the same moment never holds it open.
public enum Shell {
  @discardableResult
  public static func run(_ command: String) throws -> (status: Int32, output: String) {
    var fds: [Int32] = [-1, -1]
    // A socket pair rather than a pipe: it can be made close-on-exec atomically.
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
      throw TestSupportError("socketpair: \(String(cString: strerror(errno)))")
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
    // The test runner blocks some signals; the command gets none blocked and default handlers.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let words: [String] = ["/bin/sh", "-c", command]
    let arguments = words.map { strdup($0) }
    defer { for argument in arguments { free(argument) } }
    var argv = arguments + [nil]
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, &argv, environ)
    close(fds[1])
    guard spawned == 0 else {
      close(fds[0])
      throw TestSupportError("cannot run /bin/sh: \(String(cString: strerror(spawned)))")
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
      let count = buffer.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
      if count > 0 {
        output += buffer[0..<count]
      } else if count == 0 || errno != EINTR {
        break
      }
    }
    close(fds[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) == -1 {
      guard errno == EINTR else {
        throw TestSupportError("waitpid for /bin/sh -c \(command): \(String(cString: strerror(errno)))")
      }
    }
    // Exit status, or 128 + the signal that ended it, as a shell reports it.
    let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return (exitStatus, String(decoding: output, as: UTF8.self))
  }

  public static func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}
