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
}
