import Foundation
import KiamTestSupport

/// Where the load generator and the server under test run during a warm-path measurement.
///
/// On a small machine wrk and the server compete for the same cores: with two wrk threads and two
/// server threads on two cores, every one of them waits for a CPU most of the time (the
/// schedulers' run-queue delay is about 800 ms per second for either server), and the tail
/// latency measures the kernel's time slicing as much as the server. `split` gives wrk the first
/// core and the server (every thread of the agent, or nginx's master and workers) the others, so
/// the two servers are compared on the same dedicated cores; `shared` leaves placement to the
/// kernel.
enum Placement: String, CaseIterable, Sendable {
  case split
  case shared

  /// Prepended to the wrk command.
  var clientPrefix: String { self == .split ? "taskset -c 0 " : "" }

  var title: String {
    self == .split ? "wrk on core 0, the server on the other cores" : "wrk and the server sharing every core"
  }

  var note: String {
    switch self {
    case .split:
      return "wrk runs on core 0 and every thread of the server on the other cores (taskset), the same for both servers."
    case .shared:
      return "No pinning: wrk's two threads and the server's threads share the cores, and the tail latency includes "
        + "their waiting for each other's time slices."
    }
  }

  var resultSuffix: String { self == .split ? "" : "-shared" }

  /// Pins every thread of `server` to the cores after the first (``split``); no-op for ``shared``.
  func pin(server: [Int32]) throws {
    guard self == .split else { return }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    guard cores >= 2 else { throw BenchError("split placement needs at least two cores") }
    try Self.setAffinity(server, cores: "1-\(cores - 1)")
  }

  /// Lets every thread of `server` run on every core again after ``pin(server:)``.
  func unpin(server: [Int32]) throws {
    guard self == .split else { return }
    try Self.setAffinity(server, cores: "0-\(ProcessInfo.processInfo.activeProcessorCount - 1)")
  }

  private static func setAffinity(_ pids: [Int32], cores: String) throws {
    for pid in pids {
      let result = try Shell.run("taskset -a -p -c \(cores) \(pid)")
      guard result.status == 0 else { throw BenchError("taskset for \(pid) failed: \(result.output)") }
    }
  }
}
