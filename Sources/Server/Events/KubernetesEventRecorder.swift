import KiamShared
import Logging
import ServiceLifecycle
import Synchronization

/// Records Warning events on pods through the Kubernetes API, aggregated and rate-limited:
/// repeats of the same (pod, reason, message) within 10 minutes update one event's `count`
/// instead of creating new ones, and each such event is written at most every `minInterval`.
/// Messages carry no request IDs, so they aggregate (kiam W-13). Recording never blocks callers.
final class KubernetesEventRecorder: EventSink, Service, Sendable {
  private struct Key: Hashable {
    let podKey: String
    let uid: String
    let reason: String
    let message: String
  }

  private struct Entry {
    var pod: PodRecord
    var reason: String
    var message: String
    var eventName: String?
    var count = 0
    var pending = 0
    var firstTimestamp: Int64
    var lastWrite: ContinuousClock.Instant?
    var lastSeen: ContinuousClock.Instant
  }

  private let client: KubernetesClient
  private let logger: Logger
  private let minInterval: Duration
  private let maxEntries: Int
  private let state = Mutex<[Key: Entry]>([:])
  private let wake: AsyncStream<Void>.Continuation
  private let wakeups: AsyncStream<Void>
  private let component = "kiam.server"

  init(client: KubernetesClient, logger: Logger, minInterval: Duration = .seconds(10), maxEntries: Int = 5000) {
    self.client = client
    self.logger = logger
    self.minInterval = minInterval
    self.maxEntries = maxEntries
    (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
  }

  func warning(pod: PodRecord, reason: String, message: String) {
    let key = Key(podKey: pod.key, uid: pod.uid, reason: reason, message: message)
    let now = ContinuousClock.now
    let accepted: Bool = state.withLock { entries in
      if entries[key] == nil {
        guard entries.count < maxEntries else { return false }
        entries[key] = Entry(
          pod: pod, reason: reason, message: message, firstTimestamp: Self.unixNow(), lastSeen: now)
      }
      entries[key]!.pending += 1
      entries[key]!.lastSeen = now
      return true
    }
    if accepted {
      wake.yield()
    } else {
      logger.warning("too many distinct pod events pending, dropping one", metadata: ["reason": "\(reason)"])
    }
  }

  func run() async throws {
    try? await cancelWhenGracefulShutdown {
      try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask {
          // A tick so rate-limited entries are flushed even without new events.
          while true {
            try await Task.sleep(for: .seconds(1))
            self.wake.yield()
          }
        }
        for await _ in self.wakeups {
          await self.flush()
        }
        group.cancelAll()
      }
    }
    await flush(force: true)
  }

  private func flush(force: Bool = false) async {
    let now = ContinuousClock.now
    let due: [(Key, Entry)] = state.withLock { entries in
      // Forget aggregates not seen for 10 minutes (a new occurrence starts a new event).
      entries = entries.filter { $0.value.pending > 0 || now - $0.value.lastSeen < .seconds(600) }
      var due: [(Key, Entry)] = []
      for (key, entry) in entries where entry.pending > 0 {
        if force || entry.lastWrite.map({ now - $0 >= minInterval }) ?? true {
          due.append((key, entry))
          entries[key]!.count += entry.pending
          entries[key]!.pending = 0
          entries[key]!.lastWrite = now
        }
      }
      return due
    }
    for (key, entry) in due {
      let count = entry.count + entry.pending
      do {
        if let name = entry.eventName {
          try await client.mergePatch(
            "/api/v1/namespaces/\(entry.pod.namespace)/events/\(name)",
            body: EventPatch(count: count, lastTimestamp: RFC3339.format(epochSeconds: Self.unixNow())),
            resource: "events")
        } else {
          let name = "\(entry.pod.name).\(Self.randomSuffix())"
          let event = EventObject(
            metadata: .init(name: name, namespace: entry.pod.namespace),
            involvedObject: .init(
              kind: "Pod", namespace: entry.pod.namespace, name: entry.pod.name, uid: entry.pod.uid, apiVersion: "v1"),
            reason: entry.reason, message: entry.message, type: "Warning",
            source: .init(component: component),
            firstTimestamp: RFC3339.format(epochSeconds: entry.firstTimestamp),
            lastTimestamp: RFC3339.format(epochSeconds: Self.unixNow()),
            count: count, reportingComponent: component, reportingInstance: component)
          let _: EventObject = try await client.post(
            "/api/v1/namespaces/\(entry.pod.namespace)/events", body: event, resource: "events")
          state.withLock { $0[key]?.eventName = name }
        }
      } catch {
        logger.warning(
          "cannot record pod event",
          metadata: ["pod": "\(entry.pod.key)", "reason": "\(entry.reason)", "error": "\(KiamError.describe(error))"])
        // A patch of an event that vanished: create a new one next time.
        state.withLock { $0[key]?.eventName = nil }
      }
    }
  }

  private static func unixNow() -> Int64 {
    WallClock.system.now()
  }

  private static func randomSuffix() -> String {
    String(UInt64.random(in: 0...UInt64.max), radix: 16)
  }
}

/// A `core/v1` Event.
struct EventObject: Codable, Sendable {
  var apiVersion = "v1"
  var kind = "Event"
  var metadata: Meta
  var involvedObject: Reference
  var reason: String
  var message: String
  var type: String
  var source: Source
  var firstTimestamp: String
  var lastTimestamp: String
  var count: Int
  var reportingComponent: String
  var reportingInstance: String

  struct Meta: Codable, Sendable {
    var name: String
    var namespace: String
  }
  struct Reference: Codable, Sendable {
    var kind: String
    var namespace: String
    var name: String
    var uid: String
    var apiVersion: String
  }
  struct Source: Codable, Sendable {
    var component: String
  }
}

struct EventPatch: Encodable, Sendable {
  var count: Int
  var lastTimestamp: String
}
