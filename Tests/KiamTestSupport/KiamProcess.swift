import Foundation
import Synchronization

/// The `kiam` binary under test, run as a real child process.
public final class KiamProcess: Sendable {
  private let process: Process
  private let output = OutputBuffer()
  public let arguments: [String]

  /// Path of the binary: `KIAM_BINARY`, else `.build/debug/kiam` of this package.
  public static var binaryPath: String {
    if let path = ProcessInfo.processInfo.environment["KIAM_BINARY"], !path.isEmpty { return path }
    return packageRoot + "/.build/debug/kiam"
  }

  /// The root of this package (for fixtures and scripts).
  public static var packageRoot: String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }

  /// Starts `kiam <arguments>` (or another `executable`).
  public init(_ arguments: [String], environment: [String: String]? = nil, executable: String? = nil) throws {
    self.arguments = arguments
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable ?? Self.binaryPath)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    self.process = process
    let output = self.output
    out.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      output.state.withLock { $0.stdout.append(contentsOf: data) }
    }
    err.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      output.state.withLock { $0.stderr.append(contentsOf: data) }
    }
    try process.run()
  }

  public var pid: Int32 { process.processIdentifier }
  public var isRunning: Bool { process.isRunning }
  public var standardOutput: String { output.state.withLock { String(decoding: $0.stdout, as: UTF8.self) } }
  public var standardError: String { output.state.withLock { String(decoding: $0.stderr, as: UTF8.self) } }

  /// Sends a signal.
  public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

  /// Waits for exit (killing the process after `timeout`) and returns the exit status.
  @discardableResult
  public func wait(timeout: Duration = .seconds(30)) async -> Int32 {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while process.isRunning && clock.now < deadline {
      try? await Task.sleep(for: .milliseconds(20))
    }
    if process.isRunning {
      kill(process.processIdentifier, SIGKILL)
      while process.isRunning { try? await Task.sleep(for: .milliseconds(10)) }
    }
    // Let the pipe handlers drain.
    try? await Task.sleep(for: .milliseconds(50))
    return process.terminationStatus
  }

  /// Waits until `text` appears on standard error.
  public func waitForStandardError(containing text: String, timeout: Duration = .seconds(20)) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
      if standardError.contains(text) { return }
      if !process.isRunning { break }
      try await Task.sleep(for: .milliseconds(20))
    }
    throw TestSupportError(
      "\"\(text)\" not seen on stderr of kiam \(arguments.joined(separator: " ")):\n\(standardError)")
  }

  /// Runs `kiam <arguments>` to completion.
  public static func run(
    _ arguments: [String], environment: [String: String]? = nil, executable: String? = nil,
    timeout: Duration = .seconds(30)
  ) async throws -> (status: Int32, stdout: String, stderr: String) {
    let process = try KiamProcess(arguments, environment: environment, executable: executable)
    let status = await process.wait(timeout: timeout)
    return (status, process.standardOutput, process.standardError)
  }

  deinit {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }
}

/// Output captured from a child process.
final class OutputBuffer: Sendable {
  let state = Mutex<(stdout: [UInt8], stderr: [UInt8])>(([], []))
}

extension Process {
  /// Waits for exit by polling (Foundation's `waitUntilExit` spins forever off the main thread on Linux).
  public func waitPolling(timeout: Double = 120) {
    var waited = 0.0
    while isRunning && waited < timeout {
      usleep(5_000)
      waited += 0.005
    }
    if isRunning {
      kill(processIdentifier, SIGKILL)
      while isRunning { usleep(5_000) }
    }
  }
}
