#if canImport(Glibc)
  import Glibc
#endif

/// What `stat` says about the three TLS files: which file each path resolves to (device, inode,
/// following symlinks such as a Secret volume's `..data`), its size and its modification and
/// change times.
///
/// ``TLSMaterialStore/reload()`` reads and hashes the files only when this changes, so the periodic
/// check costs three `stat` calls. File timestamps advance in coarse steps (a few milliseconds),
/// so a file rewritten in place twice within one step, keeping its size, would look unchanged:
/// as in git's "racy clean" rule, a signature is only trusted once its newest timestamp is
/// ``settleTime`` older than the moment it was taken (``isSettled(at:)``).
struct TLSFilesSignature: Equatable, Sendable {
  /// How much older (in nanoseconds) than the time of taking the newest file timestamp must be.
  static let settleTime: Int64 = 2_000_000_000

  var entries: [FileStatus]

  /// The signature of `files` now; nil when a file cannot be looked at (the caller then reads
  /// the files and reports the problem).
  static func read(_ files: TLSFiles) -> TLSFilesSignature? {
    var entries: [FileStatus] = []
    for path in [files.certificatePath, files.keyPath, files.caPath] {
      guard let status = FileAccess.status(path) else { return nil }
      entries.append(status)
    }
    return TLSFilesSignature(entries: entries)
  }

  /// The signature of `files` now if it can be trusted to show a later change (nil otherwise, or
  /// when a file cannot be looked at).
  static func taken(of files: TLSFiles) -> TLSFilesSignature? {
    let now = now()
    guard let signature = read(files), signature.isSettled(at: now) else { return nil }
    return signature
  }

  /// Whether every file was last modified long enough before `now` (nanoseconds since the
  /// epoch) for a later rewrite to show up as a different timestamp.
  func isSettled(at now: Int64) -> Bool {
    let newest = entries.map { max($0.modified, $0.changed) }.max() ?? now
    return newest <= now - Self.settleTime
  }

  /// Nanoseconds since the Unix epoch, now.
  static func now() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
  }
}
