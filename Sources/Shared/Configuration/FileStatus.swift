/// What `stat` reports about a file: its identity, size, and modification and change times in
/// nanoseconds since the Unix epoch.
struct FileStatus: Equatable, Sendable {
  var device: UInt64
  var inode: UInt64
  var size: Int64
  var modified: Int64
  var changed: Int64
}
