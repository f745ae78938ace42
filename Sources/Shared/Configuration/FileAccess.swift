#if canImport(Glibc)
  import Glibc
#endif

/// File checks used when validating flags.
public enum FileAccess {
  /// True for a readable regular file (after following symlinks).
  public static func isReadableFile(_ path: String) -> Bool {
    var info = stat()
    guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return false }
    return access(path, R_OK) == 0
  }

  /// Why `path` is not a readable file.
  public static func problem(_ path: String) -> String {
    var info = stat()
    if stat(path, &info) != 0 {
      return errno == ENOENT ? "does not exist" : "cannot be read: \(String(cString: strerror(errno)))"
    }
    if (info.st_mode & S_IFMT) == S_IFDIR { return "is a directory" }
    if (info.st_mode & S_IFMT) != S_IFREG { return "is not a regular file" }
    if access(path, R_OK) != 0 { return "cannot be read: \(String(cString: strerror(errno)))" }
    return "is fine"
  }

  /// True for an existing directory.
  public static func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
  }

  /// Which file `path` resolves to (following symlinks) and when it last changed; nil when it
  /// cannot be looked at.
  static func status(_ path: String) -> FileStatus? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    func nanoseconds(_ time: timespec) -> Int64 { Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec) }
    return FileStatus(
      device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
      modified: nanoseconds(info.st_mtim), changed: nanoseconds(info.st_ctim))
  }
}
