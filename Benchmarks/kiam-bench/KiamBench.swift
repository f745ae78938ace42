import Foundation
import KiamTestSupport

/// `make bench`: measures the release build of kiam on this machine and writes
/// `bench-results/report.md` (the tables of BENCHMARKS.md) and `bench-results/results.json`.
///
///     kiam-bench [--quick] [--out DIR] [--connections N,N] [--rounds N] [--placement split,shared] [warm] [podstart] [scale] [steady]
///
/// Without scenario names every scenario runs. `--quick` shortens every run (for trying the
/// harness, not for numbers). `--connections` and `--rounds` narrow the warm path to some points
/// (for A/B runs of two builds, with `KIAM_BINARY` naming each in turn); `--placement` picks
/// whether wrk and the server get cores of their own, share them, or both (see ``Placement``). Needs root (network namespaces, iptables), wrk, nginx and moto.
@main
enum KiamBench {
  static func main() async {
    do {
      let settings = try BenchSettings(arguments: Array(CommandLine.arguments.dropFirst()))
      if let reason = NodeEnvironment.unavailableReason {
        throw BenchError("cannot run the benchmarks here: \(reason)")
      }
      for tool in ["wrk", "nginx"] where (try Shell.run("command -v \(tool)")).status != 0 {
        throw BenchError("\(tool) is missing (scripts/install-test-deps.sh installs it)")
      }
      BenchCleanup.install()
      let report = try BenchReport(directory: settings.outputDirectory)
      let started = Date()
      for scenario in settings.scenarios {
        switch scenario {
        case "warm": try await WarmPathBench(settings: settings, report: report).run()
        case "podstart": try await PodStartBench(settings: settings, report: report).run()
        case "scale": try await ServerScaleBench(settings: settings, report: report).run()
        case "steady": try await SteadyStateBench(settings: settings, report: report).run()
        default: throw BenchError("unknown scenario \(scenario)")
        }
        // After every scenario, so a later failure keeps what was measured.
        try report.write(header: machineHeader(settings: settings, started: started))
      }
      progress("done in \(Int(Date().timeIntervalSince(started))) s: \(settings.outputDirectory)/report.md")
    } catch {
      // Interrupted: processes it started failed on purpose; the signal handler cleans up and exits.
      while BenchCleanup.interrupted.load(ordering: .sequentiallyConsistent) { sleep(1) }
      FileHandle.standardError.write(Data("kiam-bench: error: \(error)\n".utf8))
      exit(1)
    }
  }

  static func machineHeader(settings: BenchSettings, started: Date) -> String {
    func first(_ command: String) -> String {
      ((try? Shell.run(command))?.output ?? "").split(separator: "\n").first.map(String.init) ?? "?"
    }
    let cpu = first("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").trimmingCharacters(in: .whitespaces)
    return """
      ## Run of \(ISO8601DateFormatter().string(from: started))

      - machine: \(first("nproc")) cores (\(cpu)), \(first("free -g | awk '/Mem:/ {print $2}'")) GiB, \(first("uname -sr"))
      - kiam: \(KiamProcess.binaryPath) (\(first("\(KiamProcess.binaryPath) version")))
      - tools: \(first("wrk -v 2>&1")), \(first("nginx -v 2>&1")), moto \(first("python3 -c 'import moto; print(moto.__version__)'")), \
      grpcio \(first("python3 -c 'import grpc; print(grpc.__version__)'")), boto3 \(first("python3 -c 'import boto3; print(boto3.__version__)'"))
      - settings: \(settings.rounds) rounds of \(settings.seconds) s per warm-path point\(settings.quick ? " (--quick: not for numbers)" : "")
      """
  }
}

/// What to run and for how long.
struct BenchSettings: Sendable {
  var scenarios = ["warm", "podstart", "scale", "steady"]
  var outputDirectory = "bench-results"
  var quick = false
  var rounds = 3
  var seconds = 10
  var connections = [1, 20, 200]
  var placements = Placement.allCases
  var podStartPods = 60
  var scalePods = [1_000, 10_000, 50_000]
  var steadyMinutes = 10.0

  init(arguments: [String]) throws {
    var names: [String] = []
    var iterator = arguments.makeIterator()
    while let argument = iterator.next() {
      switch argument {
      case "--quick":
        quick = true
        rounds = 1
        seconds = 3
        podStartPods = 20
        scalePods = [1_000, 10_000]
        steadyMinutes = 1
      case "--out":
        guard let value = iterator.next() else { throw BenchError("--out needs a directory") }
        outputDirectory = value
      case "--connections":
        let values = iterator.next()?.split(separator: ",").compactMap { Int($0) } ?? []
        guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else {
          throw BenchError("--connections needs a comma-separated list of positive counts, e.g. 20,200")
        }
        connections = values
      case "--placement":
        let values = iterator.next()?.split(separator: ",").compactMap { Placement(rawValue: String($0)) } ?? []
        guard !values.isEmpty else { throw BenchError("--placement needs split, shared or split,shared") }
        placements = values
      case "--rounds":
        guard let value = iterator.next().flatMap({ Int($0) }), value > 0 else {
          throw BenchError("--rounds needs a positive count")
        }
        rounds = value
      case "warm", "podstart", "scale", "steady":
        names.append(argument)
      default:
        throw BenchError("unknown argument \(argument) (scenarios: warm podstart scale steady; flags: --quick --out DIR --connections N,N --rounds N --placement split,shared)")
      }
    }
    if !names.isEmpty { scenarios = names }
  }
}

struct BenchError: Error, CustomStringConvertible {
  let description: String
  init(_ description: String) { self.description = description }
}
