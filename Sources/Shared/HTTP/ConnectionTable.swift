public import NIOCore
import Synchronization

/// The open connections of an ``HTTPServer`` by source address, with a cap in all and a much
/// smaller one per source, so one pod cannot take every connection of the node's agent.
///
/// At the per-source cap, a new connection from that source replaces the source's connection
/// that has waited longest for a request (an idle keep-alive connection, or one that never sent
/// a byte); when every connection of the source is busy with a request, the new one is refused.
/// At the global cap new connections are refused. Either way other sources keep their share.
final class ConnectionTable: Sendable {
  /// One connection, as its ``ConnectionGuard`` reports it.
  final class Entry: Sendable {
    let id: UInt64
    let source: String
    let channel: any Channel
    /// Nanoseconds (`NIODeadline` uptime) since which the connection has waited for a request;
    /// 0 while one is being read or answered.
    let waitingSince: Atomic<UInt64>

    init(id: UInt64, source: String, channel: any Channel, now: UInt64) {
      self.id = id
      self.source = source
      self.channel = channel
      waitingSince = Atomic(now)
    }

    /// A request started arriving.
    func busy() { waitingSince.store(0, ordering: .relaxed) }

    /// The last request was answered; the connection waits for the next.
    func waiting() { waitingSince.store(UInt64(NIODeadline.now().uptimeNanoseconds), ordering: .relaxed) }
  }

  /// Why a connection was not admitted.
  enum Refusal: String, Sendable {
    /// Every connection of the source is busy with a request.
    case perSource = "per_source"
    /// The server holds its maximum of connections.
    case total
  }

  private struct State {
    var bySource: [String: [Entry]] = [:]
    var total = 0
    var nextID: UInt64 = 0
    var parked = 0
  }

  /// Refused connections held open at most at once (see ``HTTPServer``'s `park`).
  static let parkLimit = 1024

  private let state = Mutex(State())
  let limit: Int
  let perSourceLimit: Int

  init(limit: Int, perSourceLimit: Int) {
    self.limit = limit
    self.perSourceLimit = perSourceLimit
  }

  var count: Int { state.withLock { $0.total } }

  /// Admits `channel` from `source`: its entry, and the connection it replaces (to be closed),
  /// or why it is refused.
  func admit(_ channel: any Channel, source: String) -> Result<(entry: Entry, replaced: Entry?), RefusalError> {
    let now = UInt64(NIODeadline.now().uptimeNanoseconds)
    return state.withLock { state in
      var entries = state.bySource[source] ?? []
      var replaced: Entry?
      if entries.count >= perSourceLimit {
        // The one that has waited longest for a request goes; busy ones (0) never.
        var oldest: Int?
        var oldestSince = UInt64.max
        for (index, entry) in entries.enumerated() {
          let since = entry.waitingSince.load(ordering: .relaxed)
          if since != 0 && since < oldestSince {
            oldest = index
            oldestSince = since
          }
        }
        guard let oldest else { return .failure(RefusalError(refusal: .perSource)) }
        replaced = entries.remove(at: oldest)
        state.total -= 1
      } else if state.total >= limit {
        return .failure(RefusalError(refusal: .total))
      }
      state.nextID += 1
      let entry = Entry(id: state.nextID, source: source, channel: channel, now: now)
      entries.append(entry)
      state.bySource[source] = entries
      state.total += 1
      return .success((entry, replaced))
    }
  }

  /// Forgets a closed connection (once; a replaced one is already gone).
  func remove(_ entry: Entry) {
    state.withLock { state in
      guard var entries = state.bySource[entry.source], let index = entries.firstIndex(where: { $0 === entry }) else {
        return
      }
      entries.remove(at: index)
      state.bySource[entry.source] = entries.isEmpty ? nil : entries
      state.total -= 1
    }
  }

  /// Counts a refused connection that is held open; false when the most are held already.
  func park() -> Bool {
    state.withLock { state in
      guard state.parked < Self.parkLimit else { return false }
      state.parked += 1
      return true
    }
  }

  func unpark() { state.withLock { $0.parked -= 1 } }

  struct RefusalError: Error {
    let refusal: Refusal
  }
}
