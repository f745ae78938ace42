import Glibc
import KiamShared
import NIOPosix

/// Runs a program (`iptables`) with `posix_spawn` on NIO's thread pool and collects its output.
///
/// Not Foundation's `Process`: its first use faults about 4 MiB of Foundation's code into an
/// otherwise idle agent (measured with a small static binary), and the agent runs its iptables
/// check every 30 s, so that code was resident again after every memory trim.
enum CommandRunner {
  struct Output: Sendable {
    let status: Int32
    let standardOutput: String
    let standardError: String
  }

  /// The first executable named `name` in `PATH` (the sbin directories when `PATH` is unset).
  static func find(_ name: String, environment: [String: String]? = nil) -> String? {
    let path =
      (environment.map { $0["PATH"] } ?? getenv("PATH").map { String(cString: $0) })
      ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
      let candidate = "\(directory)/\(name)"
      var info = stat()
      if stat(candidate, &info) == 0, info.st_mode & S_IFMT == S_IFREG, access(candidate, X_OK) == 0 {
        return candidate
      }
    }
    return nil
  }

  /// Runs `executable` with `arguments` (standard input from /dev/null) and returns its exit status
  /// (128 + the signal if a signal ended it) and output. Throws when it cannot be started.
  /// - Parameter timeout: The program is killed (SIGKILL, status 137) when it runs longer (some
  ///   iptables-nft versions hang; kube-proxy's iptables-wrapper bounds them too).
  static func run(_ executable: String, _ arguments: [String], timeout: Duration? = nil) async throws -> Output {
    try await NIOThreadPool.singleton.runIfActive { try spawnAndWait(executable, arguments, timeout: timeout) }
  }

  private static func spawnAndWait(_ executable: String, _ arguments: [String], timeout: Duration?) throws -> Output {
    var outPipe: [Int32] = [-1, -1]
    var errPipe: [Int32] = [-1, -1]
    guard pipe(&outPipe) == 0 else { throw failure("pipe", errno) }
    guard pipe(&errPipe) == 0 else {
      let code = errno
      close(outPipe[0])
      close(outPipe[1])
      throw failure("pipe", code)
    }
    // Only the child's dup2'd copies survive exec (the agent itself never forks).
    for descriptor in outPipe + errPipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
    posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

    // The child starts with default signal handling and nothing blocked, whatever this thread has.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    close(outPipe[1])
    close(errPipe[1])
    guard spawned == 0 else {
      close(outPipe[0])
      close(errPipe[0])
      throw failure("cannot run \(executable)", spawned)
    }
    let deadline = timeout.map { ContinuousClock.now + $0 }
    let (standardOutput, standardError) = readBoth(outPipe[0], errPipe[0], until: deadline) { kill(pid, SIGKILL) }
    close(outPipe[0])
    close(errPipe[0])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw failure("waitpid", errno) }
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift does not import.
    let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    return Output(
      status: exitStatus,
      standardOutput: String(decoding: standardOutput, as: UTF8.self),
      standardError: String(decoding: standardError, as: UTF8.self))
  }

  /// Reads both pipes to their end, whichever has data (neither can fill up and stall the child).
  /// Past `deadline`, `expire` is called once (it kills the child, which closes the pipes).
  private static func readBoth(
    _ out: Int32, _ err: Int32, until deadline: ContinuousClock.Instant?, expire: () -> Void
  ) -> ([UInt8], [UInt8]) {
    var collected: [[UInt8]] = [[], []]
    var descriptors = [
      pollfd(fd: out, events: Int16(POLLIN), revents: 0), pollfd(fd: err, events: Int16(POLLIN), revents: 0),
    ]
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    var open = 2
    var expired = false
    while open > 0 {
      var wait: Int32 = -1
      if let deadline, !expired {
        let left = ContinuousClock.now.duration(to: deadline)
        if left <= .zero {
          expire()
          expired = true
        } else {
          wait = Int32(min(left.seconds * 1000 + 1, 60_000))
        }
      }
      let ready = poll(&descriptors, 2, wait)
      guard ready >= 0 else {
        if errno == EINTR { continue }
        break
      }
      if ready == 0 { continue }
      for index in 0..<2 where descriptors[index].fd >= 0 && descriptors[index].revents != 0 {
        let count = buffer.withUnsafeMutableBytes { read(descriptors[index].fd, $0.baseAddress, $0.count) }
        if count > 0 {
          collected[index].append(contentsOf: buffer[0..<count])
        } else if count == 0 || errno != EINTR {
          descriptors[index].fd = -1  // poll ignores negative descriptors
          open -= 1
        }
      }
    }
    return (collected[0], collected[1])
  }

  private static func failure(_ what: String, _ code: Int32) -> KiamError {
    KiamError(code: .internal, message: "\(what): \(String(cString: strerror(code)))")
  }
}
