import Synchronization

/// Rows of atomic counters, one row (shard) per recording thread, each row starting on a cache
/// line of its own so that threads adding to different rows never write to the same line.
///
/// Adds are relaxed atomic adds (no lock, no ordering): a reader sums a counter over the rows.
final class ShardedCounters: Sendable {
  /// Bytes between the starts of two rows: whole cache lines (128 covers the adjacent-line
  /// prefetcher of x86 and the 128-byte lines of some ARM cores).
  static let lineBytes = 128

  let shards: Int
  let countersPerShard: Int
  private let stride: Int
  /// Owned by this object: `shards * stride` counters, aligned to `lineBytes`, freed in deinit.
  private nonisolated(unsafe) let base: UnsafeMutablePointer<Atomic<Int>>

  init(shards: Int, countersPerShard: Int) {
    precondition(shards > 0 && countersPerShard > 0)
    self.shards = shards
    self.countersPerShard = countersPerShard
    let perLine = Self.lineBytes / MemoryLayout<Atomic<Int>>.stride
    stride = (countersPerShard + perLine - 1) / perLine * perLine
    let count = shards * stride
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: count * MemoryLayout<Atomic<Int>>.stride, alignment: Self.lineBytes)
    base = raw.bindMemory(to: Atomic<Int>.self, capacity: count)
    for index in 0..<count { (base + index).initialize(to: Atomic(0)) }
  }

  deinit {
    base.deinitialize(count: shards * stride)
    base.deallocate()
  }

  /// Adds `value` to one counter of one row (wrapping on overflow).
  func add(_ value: Int, shard: Int, counter: Int) {
    precondition(shard >= 0 && shard < shards && counter >= 0 && counter < countersPerShard)
    base[shard * stride + counter].wrappingAdd(value, ordering: .relaxed)
  }

  /// The sum of one counter over all rows.
  func total(counter: Int) -> Int {
    precondition(counter >= 0 && counter < countersPerShard)
    var sum = 0
    for shard in 0..<shards { sum &+= base[shard * stride + counter].load(ordering: .relaxed) }
    return sum
  }

  /// The address of a row's first counter (for tests of the layout).
  func rowAddress(_ shard: Int) -> UInt {
    UInt(bitPattern: base + shard * stride)
  }
}
