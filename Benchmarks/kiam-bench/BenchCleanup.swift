import Foundation
import KiamTestSupport
import Synchronization

/// Leaves nothing behind when kiam-bench is interrupted (Ctrl-C, SIGTERM): stops every process
/// the run started (agent, server, moto, nginx, wrk, at any depth) and removes the network
/// namespaces of its labs, then exits with 128 + the signal.
enum BenchCleanup {
  private static let labs = Mutex<[String: E2ELab]>([:])
  /// Kept alive for the whole run; written once, by `install()` at start-up.
  private nonisolated(unsafe) static var sources: [any DispatchSourceSignal] = []

  /// Handles SIGINT and SIGTERM from now on.
  static func install() {
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { interrupted(by: number) }
      source.resume()
      sources.append(source)
    }
  }

  /// A node with its pods, removed if the run is interrupted.
  static func nodeEnvironment() async throws -> NodeEnvironment {
    let env = try await NodeEnvironment(authenticate: false)
    labs.withLock { $0[env.lab.id] = env.lab }
    return env
  }

  /// Tears a node environment down (the normal way out).
  static func tearDown(_ env: NodeEnvironment) async {
    await env.tearDown()
    _ = labs.withLock { $0.removeValue(forKey: env.lab.id) }
  }

  /// Set once a signal arrived: the run's own error path then leaves the exit to the handler.
  static let interrupted = Atomic<Bool>(false)

  private static func interrupted(by number: Int32) {
    guard !interrupted.exchange(true, ordering: .sequentiallyConsistent) else { return }
    FileHandle.standardError.write(Data("kiam-bench: interrupted, stopping what the run started\n".utf8))
    let descendants = descendants(of: getpid())
    for pid in descendants { kill(pid, SIGTERM) }
    // Give them a moment to exit (the agent removes its rule, nginx its workers), then insist.
    let deadline = Date().addingTimeInterval(5)
    while Date() < deadline, descendants.contains(where: { kill($0, 0) == 0 }) { usleep(100_000) }
    for pid in descendants where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
    for lab in labs.withLock({ Array($0.values) }) { lab.tearDown() }
    exit(128 + number)
  }

  /// Every process below `root` (children first found, deepest last), from `/proc/<pid>/stat`.
  static func descendants(of root: pid_t) -> [pid_t] {
    var children: [pid_t: [pid_t]] = [:]
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    for entry in entries {
      guard let pid = pid_t(entry),
        let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      else { continue }
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
      let fields = stat[stat.index(after: close)...].split(separator: " ")
      guard fields.count > 1, let parent = pid_t(fields[1]) else { continue }
      children[parent, default: []].append(pid)
    }
    var found: [pid_t] = []
    var queue = [root]
    while let next = queue.popLast() {
      for child in children[next] ?? [] {
        found.append(child)
        queue.append(child)
      }
    }
    return found
  }
}
