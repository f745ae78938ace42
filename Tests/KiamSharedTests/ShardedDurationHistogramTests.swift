import Foundation
import KiamTestSupport
import Prometheus
import Synchronization
import Testing

@testable import KiamShared

@Suite struct ShardedDurationHistogramTests {
  let buckets: [Duration] = [.milliseconds(1), .milliseconds(2), .milliseconds(4)]

  @Test func bucketsCountValuesAtOrBelowTheirBound() {
    let histogram = ShardedDurationHistogram(name: "t_seconds", buckets: buckets)
    for value: Duration in [
      .microseconds(500), .milliseconds(1), .microseconds(1001), .milliseconds(4), .milliseconds(9),
    ] {
      histogram.record(value)
    }
    let snapshot = histogram.snapshot()
    #expect(snapshot.cumulative == [2, 3, 4, 5])
    #expect(snapshot.count == 5)
    #expect(snapshot.sum == .microseconds(500 + 1000 + 1001 + 4000 + 9000))
  }

  @Test func concurrentRecordsFromManyThreadsAreAllCounted() {
    let histogram = ShardedDurationHistogram(name: "t_seconds", buckets: buckets, shardCount: 4)
    let threads = 8
    let perThread = 20_000
    // More threads than shards: shared shards must still count exactly.
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
      for index in 0..<perThread {
        histogram.record(.microseconds(index % 2 == 0 ? 1500 : 5000 + thread))
      }
    }
    let snapshot = histogram.snapshot()
    let total = threads * perThread
    #expect(snapshot.count == total)
    #expect(snapshot.cumulative == [0, total / 2, total / 2, total])
    let above = (0..<threads).map { (5000 + $0) * perThread / 2 }.reduce(0, +)
    #expect(snapshot.sum == .microseconds(1500 * total / 2 + above))
  }

  @Test func threadsGetTheirOwnShard() async {
    let indices = Mutex<Set<Int>>([])
    let first = ShardedDurationHistogramThread.index
    #expect(ShardedDurationHistogramThread.index == first, "a thread keeps its shard")
    let threads = (0..<3).map { _ in
      Thread { indices.withLock { _ = $0.insert(ShardedDurationHistogramThread.index) } }
    }
    for thread in threads { thread.start() }
    #expect(await eventually(timeout: .seconds(5)) { indices.withLock { $0.count } == 3 })
    #expect(!indices.withLock { $0.contains(first) })
  }

  @Test func shardRowsStartOnCacheLinesOfTheirOwn() {
    for countersPerShard in [1, 3, 16, 17, 40] {
      let counters = ShardedCounters(shards: 5, countersPerShard: countersPerShard)
      let rowBytes = countersPerShard * MemoryLayout<Int>.stride
      for shard in 0..<5 {
        #expect(counters.rowAddress(shard) % UInt(ShardedCounters.lineBytes) == 0)
        if shard > 0 { #expect(counters.rowAddress(shard) - counters.rowAddress(shard - 1) >= UInt(rowBytes)) }
      }
      for shard in 0..<5 { counters.add(shard + 1, shard: shard, counter: countersPerShard - 1) }
      #expect(counters.total(counter: countersPerShard - 1) == 15)
      #expect(counters.total(counter: 0) == (countersPerShard == 1 ? 15 : 0))
    }
  }

  @Test func metricsPageShowsEachHandlerOnceWithEscapedLabels() throws {
    let metrics = KiamMetrics()
    #expect(metrics.handlerLatency("credentials") === metrics.handlerLatency("credentials"))
    metrics.handlerLatency("credentials").record(.milliseconds(3))
    metrics.handlerLatency("credentials").record(.seconds(9))
    let text = metrics.emitToString()
    #expect(text.components(separatedBy: "# TYPE kiam_metadata_handler_latency_seconds histogram").count == 2)
    let page = try PrometheusText(text)
    let credentials = ["handler": "credentials"]
    #expect(
      page.value("kiam_metadata_handler_latency_seconds_bucket", credentials.merging(["le": "0.002"]) { $1 }) == 0)
    #expect(
      page.value("kiam_metadata_handler_latency_seconds_bucket", credentials.merging(["le": "0.004"]) { $1 }) == 1)
    #expect(
      page.value("kiam_metadata_handler_latency_seconds_bucket", credentials.merging(["le": "4.096"]) { $1 }) == 1)
    #expect(page.value("kiam_metadata_handler_latency_seconds_bucket", credentials.merging(["le": "+Inf"]) { $1 }) == 2)
    #expect(page.value("kiam_metadata_handler_latency_seconds_count", credentials) == 2)
    #expect(page.value("kiam_metadata_handler_latency_seconds_sum", credentials) == 9.003)
  }

  @Test func labelValuesAreEscaped() {
    let histogram = ShardedDurationHistogram(name: "t_seconds", labels: [("handler", "odd\"na\\me")], buckets: buckets)
    histogram.record(.microseconds(10))
    var bytes: [UInt8] = []
    histogram.emit(into: &bytes)
    let text = String(decoding: bytes, as: UTF8.self)
    #expect(text.contains(#"t_seconds_bucket{handler="odd\"na\\me",le="0.001"} 1"#))
    #expect(text.contains(#"t_seconds_count{handler="odd\"na\\me"} 1"#))
  }
}
