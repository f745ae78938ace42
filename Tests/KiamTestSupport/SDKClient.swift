import Foundation
import Synchronization

/// A real AWS SDK, unmodified, as a long-running client process (scripts/test/sdk/, and
/// scripts/test/botocore_client.py): every ``fetch()`` makes it fetch credentials anew through
/// its default chain and, with `STS_ENDPOINT`, ask STS who they belong to, in the same process,
/// so whatever the SDK caches between calls (IMDSv2 tokens, role names) is exercised.
///
/// The Go clients are built from Debian's SDK packages in GOPATH mode (no module downloads) into
/// `.build/sdk-clients/` on first use.
public final class SDKClient: @unchecked Sendable {
  public enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
    /// golang-github-aws-aws-sdk-go-dev (1.44 on Debian 12).
    case goV1 = "go-v1"
    /// golang-github-aws-aws-sdk-go-v2-dev (1.17 on Debian 12).
    case goV2 = "go-v2"
    /// ruby-aws-sdk-core (3.168 on Debian 12).
    case ruby
    /// botocore from PyPI.
    case botocore

    public var description: String { rawValue }

    static let gopath = "/usr/share/gocode"

    /// Why this SDK cannot be run here, or nil.
    public var unavailableReason: String? {
      func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
      switch self {
      case .goV1, .goV2:
        guard SDKClient.which("go") != nil else { return "go missing (apt-get install golang-go)" }
        let package = self == .goV1 ? "aws-sdk-go" : "aws-sdk-go-v2"
        guard exists("\(Self.gopath)/src/github.com/aws/\(package)") else {
          return "golang-github-aws-\(package)-dev missing (scripts/install-test-deps.sh installs it)"
        }
        return nil
      case .ruby:
        guard SDKClient.which("ruby") != nil else { return "ruby missing (apt-get install ruby-aws-sdk-core)" }
        let probe = try? Shell.run("ruby -e 'require \"aws-sdk-core\"'")
        return probe?.status == 0 ? nil : "ruby-aws-sdk-core missing (scripts/install-test-deps.sh installs it)"
      case .botocore:
        return STSLab.isAvailable ? nil : "python3 with boto3 missing"
      }
    }

    /// The command that runs the client (building it first for Go).
    public func command() throws -> [String] {
      let root = KiamProcess.packageRoot
      switch self {
      case .goV1, .goV2: return [try SDKClient.buildGo(self)]
      case .ruby: return [SDKClient.which("ruby") ?? "/usr/bin/ruby", "\(root)/scripts/test/sdk/ruby/client.rb"]
      case .botocore:
        return [SDKClient.which("python3") ?? "/usr/bin/python3", "\(root)/scripts/test/botocore_client.py", "loop"]
      }
    }
  }

  private let process: Process
  private let input: FileHandle
  /// Standard output split into lines, and standard error.
  private final class Output: Sendable {
    let lines = Mutex<(complete: [String], partial: Data)>(([], Data()))
    let errors = Mutex(Data())
  }
  private let output = Output()
  /// The SDK, e.g. `go-v2`, or `java-v2 (replayed)`.
  public let name: String

  /// Starts the client. `prefix` runs it elsewhere (`ip netns exec POD env ...`); `environment`
  /// is added to the client's (with a prefix, pass it through `env` in the prefix instead).
  public convenience init(_ kind: Kind, prefix: [String] = [], environment: [String: String] = [:]) throws {
    try self.init(name: kind.rawValue, command: try kind.command(), prefix: prefix, environment: environment)
  }

  /// Replays an SDK that cannot be installed here (``replayedSDKs``) by the rules read from its
  /// source (scripts/test/sdk/replay/): its answers carry `requests`, what it sent, one
  /// `METHOD path status` per line.
  public convenience init(replaying sdk: String, prefix: [String] = []) throws {
    let python = SDKClient.which("python3") ?? "/usr/bin/python3"
    try self.init(
      name: "\(sdk) (replayed)",
      command: [python, "\(KiamProcess.packageRoot)/scripts/test/sdk/replay/imds_replay.py", sdk],
      prefix: prefix, environment: [:])
  }

  /// The SDKs ``init(replaying:prefix:)`` knows.
  public static let replayedSDKs = ["java-v2", "js-v3", "rust", "kotlin"]

  /// What the fixture says `sdk` sends in `scenario` (`first`, `refresh`, `no_role`,
  /// `role_added`), `{role}` replaced by `role`.
  public static func replaySequence(_ sdk: String, _ scenario: String, role: String) throws -> [String] {
    let data = try Data(
      contentsOf: URL(fileURLWithPath: "\(KiamProcess.packageRoot)/scripts/test/sdk/replay/sdks.json"))
    let fixture = try JSONSerialization.jsonObject(with: data) as? [String: Any]
    guard let sequences = (fixture?[sdk] as? [String: Any])?["sequences"] as? [String: [String]],
      let sequence = sequences[scenario]
    else { throw TestSupportError("sdks.json has no \(scenario) sequence for \(sdk)") }
    return sequence.map { $0.replacingOccurrences(of: "{role}", with: role) }
  }

  private init(name: String, command: [String], prefix: [String], environment: [String: String]) throws {
    self.name = name
    let argv = prefix + command
    process = Process()
    process.executableURL = URL(fileURLWithPath: argv[0])
    process.arguments = Array(argv.dropFirst())
    if !environment.isEmpty {
      process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let stdin = Pipe()
    let stdout = Pipe()
    let stderr = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    process.standardError = stderr
    input = stdin.fileHandleForWriting
    let output = self.output
    stdout.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      output.lines.withLock { state in
        state.partial.append(data)
        while let newline = state.partial.firstIndex(of: UInt8(ascii: "\n")) {
          state.complete.append(String(decoding: state.partial[state.partial.startIndex..<newline], as: UTF8.self))
          state.partial = Data(state.partial[state.partial.index(after: newline)...])
        }
      }
    }
    stderr.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      output.errors.withLock { $0.append(data) }
    }
    try process.run()
  }

  /// What the client wrote on standard error so far.
  public var standardError: String { output.errors.withLock { String(decoding: $0, as: UTF8.self) } }

  /// Makes the client fetch credentials (and ask STS) once; returns its JSON answer.
  public func fetch(timeout: Duration = .seconds(30)) async throws -> [String: String] {
    let before = output.lines.withLock { $0.complete.count }
    guard process.isRunning else { throw TestSupportError("\(name) exited: \(standardError)") }
    try input.write(contentsOf: Data("fetch\n".utf8))
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
      if let line = output.lines.withLock({ $0.complete.count > before ? $0.complete[before] : nil }) {
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        return object.compactMapValues { $0 as? String }
      }
      if !process.isRunning { break }
      try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError("\(name) gave no answer in \(timeout): \(standardError)")
  }

  public func stop() {
    try? input.close()
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitPolling(timeout: 10)
  }

  deinit { stop() }

  // MARK: Building

  public static func which(_ name: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
    for directory in path + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/lib/go/bin"]
    where FileManager.default.isExecutableFile(atPath: "\(directory)/\(name)") {
      return "\(directory)/\(name)"
    }
    return nil
  }

  private static let buildLock = Mutex(())

  /// Builds a Go client from Debian's packages (GOPATH mode, nothing downloaded) unless the
  /// binary is newer than its source; returns the binary's path.
  static func buildGo(_ kind: Kind) throws -> String {
    try buildGo(source: "\(KiamProcess.packageRoot)/scripts/test/sdk/\(kind.rawValue)/main.go", name: kind.rawValue)
  }

  /// Builds the Go program `source` as `.build/sdk-clients/<name>` (see ``buildGo(_:)``).
  public static func buildGo(source: String, name: String) throws -> String {
    let root = KiamProcess.packageRoot
    let output = "\(root)/.build/sdk-clients/\(name)"
    return try buildLock.withLock { _ in
      let manager = FileManager.default
      if let built = try? manager.attributesOfItem(atPath: output)[.modificationDate] as? Date,
        let written = try? manager.attributesOfItem(atPath: source)[.modificationDate] as? Date, built > written
      {
        return output
      }
      guard let go = which("go") else { throw TestSupportError("go missing") }
      let result = try Shell.run(
        "mkdir -p \(root)/.build/sdk-clients && cd \(root)/.build/sdk-clients && env GOPATH=\(Kind.gopath) GO111MODULE=off "
          + "GOFLAGS= GOPROXY=off GOCACHE=\(root)/.build/sdk-clients/go-cache \(go) build -o \(output) \(source) 2>&1")
      guard result.status == 0 else { throw TestSupportError("building \(name) failed: \(result.output)") }
      return output
    }
  }
}
