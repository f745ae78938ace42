import GRPCCore
import KiamShared
import Synchronization

@testable import KiamAgent

/// A kiam server for ``PodCredentialCache``'s own tests: answers from a script and counts calls.
final class ScriptedSource: PodCredentialSource {
  struct Script: Sendable {
    /// The pod behind each IP (absent: `pod not found`).
    var pods: [String: PodIdentity] = [:]
    /// When set, every call fails with this (the server is down).
    var failure: ServerCallError? = nil
    var unreachable = false
    /// `pod not found` for the first this many `GetPodRole` calls (a watch that lags).
    var unknownForCalls = 0
  }

  private let script: Mutex<Script>
  private let calls = Mutex<[String]>([])

  init(_ script: Script = Script()) { self.script = Mutex(script) }

  func update(_ change: (inout Script) -> Void) { script.withLock { change(&$0) } }
  /// The calls made so far: `GetPodRole <ip>` and `GetPodCredentials <ip> <role>`.
  var made: [String] { calls.withLock { $0 } }

  var isUnreachable: Bool { script.withLock { $0.unreachable } }

  func podRole(ip: String, timeout: Duration) async throws(ServerCallError) -> PodIdentity {
    calls.withLock { $0.append("GetPodRole \(ip)") }
    let now = script.withLock { script in
      defer { script.unknownForCalls -= 1 }
      return script
    }
    if let failure = now.failure { throw failure }
    guard now.unknownForCalls <= 0, let pod = now.pods[ip] else {
      throw ServerCallError(code: .unknown, message: "pod not found")
    }
    return pod
  }

  func podCredentials(ip: String, role: String, timeout: Duration) async throws(ServerCallError) -> ServerCredentials {
    calls.withLock { $0.append("GetPodCredentials \(ip) \(role)") }
    let now = script.withLock { $0 }
    if let failure = now.failure { throw failure }
    guard let pod = now.pods[ip] else { throw ServerCallError(code: .unknown, message: "no pod found") }
    guard PodCredentialCache.sameRole(pod.role, role) else {
      throw ServerCallError(code: .unknown, message: "forbidden by policy")
    }
    let credentials = Kiam_Credentials.with {
      $0.accessKeyID = "ASIA-\(pod.uid)-\(made.count)"
      $0.expiration = RFC3339.format(epochSeconds: WallClock.system.now() + 3600)
    }
    return ServerCredentials(credentials: credentials, podUID: pod.uid, minimumLifetime: 1800, refreshMargin: 300)
  }
}

/// For tests of the cache's rules alone: there is no server, and asking one is a test failure.
struct NoServer: PodCredentialSource {
  var isUnreachable: Bool { false }
  func podRole(ip: String, timeout: Duration) async throws(ServerCallError) -> PodIdentity {
    throw ServerCallError(code: .unavailable, message: "this test has no server")
  }
  func podCredentials(ip: String, role: String, timeout: Duration) async throws(ServerCallError) -> ServerCredentials {
    throw ServerCallError(code: .unavailable, message: "this test has no server")
  }
}
