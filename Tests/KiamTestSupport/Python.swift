import Foundation

/// Asks python3 whether it can import some modules.
public enum Python {
  /// True when `python3 -c "import <modules>"` succeeds; else prints `otherwise` once.
  public static func canImport(_ modules: String, otherwise: String) -> Bool {
    let probe = Process()
    probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    probe.arguments = ["python3", "-c", "import \(modules)"]
    probe.standardOutput = FileHandle.nullDevice
    probe.standardError = FileHandle.nullDevice
    guard (try? probe.run()) != nil else { return false }
    probe.waitPolling()
    if probe.terminationStatus != 0 { print("note: \(otherwise)") }
    return probe.terminationStatus == 0
  }
}
