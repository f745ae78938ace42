import NIOPosix
public import Prometheus
import Synchronization

/// A Prometheus histogram of durations that threads record into without waiting for each other.
///
/// swift-prometheus's `DurationHistogram` keeps one lock per series. The agent records every
/// request's latency, from both event loops at once, and under load that lock was contended on
/// about one request in 60: the waiting loop slept in the kernel (`futex`) until the other let
/// go (98 % of the agent's futex calls under load were this lock). Here each thread
/// records into a shard of its own (assigned round-robin on its first record) with relaxed
/// atomic adds, no lock; each shard starts on a cache line of its own, so two threads never write
/// to the same line. The scrape adds the shards up. The text is what swift-prometheus writes for
/// a histogram series (`_bucket{…,le="…"}`, `_sum`, `_count`).
public final class ShardedDurationHistogram: Sendable {
  /// The series' name, e.g. `kiam_metadata_handler_latency_seconds`.
  public let name: String
  /// The series' labels, in order.
  public let labels: [(String, String)]
  /// Upper bounds of the buckets, ascending.
  public let buckets: [Duration]
  private let shards: ShardedCounters
  /// `name="value",` for the bucket lines and `{name="value"}` for `_sum`/`_count` ("" without labels).
  private let bucketLabelPrefix: String
  private let seriesLabels: String

  /// - Parameter shardCount: Independent shards; more than the threads that record at once.
  public init(name: String, labels: [(String, String)] = [], buckets: [Duration], shardCount: Int = 16) {
    self.name = name
    self.labels = labels
    self.buckets = buckets.sorted()
    // Per shard: one count per bucket, one above every bound, then the sum in nanoseconds.
    shards = ShardedCounters(shards: max(1, shardCount), countersPerShard: buckets.count + 2)
    let rendered = labels.map { "\($0.0)=\"\(Self.escape($0.1))\"" }.joined(separator: ",")
    bucketLabelPrefix = rendered.isEmpty ? "" : rendered + ","
    seriesLabels = rendered.isEmpty ? "" : "{\(rendered)}"
  }

  /// Records one observation.
  public func record(_ value: Duration) {
    var slot = buckets.count
    for (index, bound) in buckets.enumerated() where value <= bound {
      slot = index
      break
    }
    let shard = ShardedDurationHistogramThread.index % shards.shards
    shards.add(1, shard: shard, counter: slot)
    shards.add(Int(value.nanoseconds), shard: shard, counter: buckets.count + 1)
  }

  /// Cumulative bucket counts (one per bound, then +Inf), the sum and the count over all shards.
  ///
  /// Taken while threads record, the sum can miss the newest observation that the counts include.
  public func snapshot() -> (cumulative: [Int], sum: Duration, count: Int) {
    var running = 0
    let cumulative = (0...buckets.count).map { slot -> Int in
      running += shards.total(counter: slot)
      return running
    }
    return (cumulative, .nanoseconds(shards.total(counter: buckets.count + 1)), running)
  }

  /// Appends the series' lines (no `# HELP`/`# TYPE`: the family writes those once).
  func emit(into buffer: inout [UInt8]) {
    let (cumulative, sum, count) = snapshot()
    for (index, bound) in buckets.enumerated() {
      buffer.append(
        contentsOf: "\(name)_bucket{\(bucketLabelPrefix)le=\"\(bound.bucketRepresentation)\"} \(cumulative[index])\n"
          .utf8)
    }
    buffer.append(contentsOf: "\(name)_bucket{\(bucketLabelPrefix)le=\"+Inf\"} \(count)\n".utf8)
    buffer.append(contentsOf: "\(name)_sum\(seriesLabels) \(sum.bucketRepresentation)\n".utf8)
    buffer.append(contentsOf: "\(name)_count\(seriesLabels) \(count)\n".utf8)
  }

  static func escape(_ value: String) -> String {
    var escaped = ""
    for character in value {
      switch character {
      case "\\": escaped += "\\\\"
      case "\"": escaped += "\\\""
      case "\n": escaped += "\\n"
      default: escaped.append(character)
      }
    }
    return escaped
  }
}

/// Which shard the calling thread records into: the n-th thread to record gets shard n.
enum ShardedDurationHistogramThread {
  final class Index: Sendable {
    let value: Int
    init(_ value: Int) { self.value = value }
  }

  private static let current = ThreadSpecificVariable<Index>()
  private static let next = Atomic<Int>(0)

  static var index: Int {
    if let known = current.currentValue { return known.value }
    let assigned = Index(next.wrappingAdd(1, ordering: .relaxed).oldValue)
    current.currentValue = assigned
    return assigned.value
  }
}
