import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import Testing

@testable import KiamAgent

/// Resolution of `--server-address` for the gRPC client: every address, re-resolved, and a name
/// that does not resolve (DNS not up yet at node boot) retried with backoff, not in a loop.
@Suite struct ServerAddressResolverTests {
  /// Counts lookups and answers from a script (the last answer repeats).
  final class ScriptedLookup: Sendable {
    let state: Mutex<(calls: Int, answers: [[String]])>
    init(_ answers: [[String]]) { state = Mutex((0, answers)) }
    var calls: Int { state.withLock { $0.calls } }
    func lookup(_ host: String) -> [String] {
      state.withLock { state in
        state.calls += 1
        return state.answers.count > 1 ? state.answers.removeFirst() : state.answers.first ?? []
      }
    }
  }

  func iterator(_ lookup: ScriptedLookup, refresh: Duration = .seconds(60)) -> ServerAddressResolutions.Iterator {
    ServerAddressResolutions(
      target: ServerAddressTarget(
        host: "kiam-server", port: 443, refreshInterval: refresh, lookup: { lookup.lookup($0) })
    ).makeAsyncIterator()
  }

  @Test func unresolvableNameBacksOffInsteadOfSpinning() async throws {
    let lookup = ScriptedLookup([[]])
    var names = iterator(lookup)
    // First: "nothing to connect to yet", at once, so calls fail fast.
    let first = try await names.next()
    #expect(first?.endpoints.isEmpty == true)
    #expect(lookup.calls == 1)
    // Then: lookups keep failing; the resolver retries 0.4 s, 0.8 s, 1.6 s … apart and yields
    // nothing new. Let it run for 1.5 s (a spinning resolver made thousands of lookups).
    let pending = names
    await withTaskGroup(of: Void.self) { group in
      group.addTask {
        var names = pending
        _ = try? await names.next()
      }
      try? await Task.sleep(for: .milliseconds(1500))
      group.cancelAll()
    }
    #expect((2...4).contains(lookup.calls), "\(lookup.calls) lookups in 1.5 s")
  }

  @Test func yieldsEveryAddressAndOnlyChanges() async throws {
    let lookup = ScriptedLookup([["10.0.0.2", "10.0.0.1"].sorted(), ["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]])
    var names = iterator(lookup, refresh: .milliseconds(10))
    let first = try #require(try await names.next())
    #expect(
      first.endpoints == [
        Endpoint(addresses: [.ipv4(host: "10.0.0.1", port: 443)]),
        Endpoint(addresses: [.ipv4(host: "10.0.0.2", port: 443)]),
      ])
    // The unchanged second answer is skipped; the third is a change.
    let second = try #require(try await names.next())
    #expect(second.endpoints == [Endpoint(addresses: [.ipv4(host: "10.0.0.3", port: 443)])])
    #expect(lookup.calls == 3)
  }

  @Test func recoversWhenTheNameStartsResolving() async throws {
    let lookup = ScriptedLookup([[], [], ["fd00::1"]])
    var names = iterator(lookup)
    #expect(try await names.next()?.endpoints.isEmpty == true)
    let resolved = try #require(try await names.next())
    #expect(resolved.endpoints == [Endpoint(addresses: [.ipv6(host: "fd00::1", port: 443)])])
  }

  @Test func delays() {
    #expect(ServerAddressResolutions.Iterator.delay(failures: 0, resolved: false, refresh: .seconds(30)) == nil)
    #expect(ServerAddressResolutions.Iterator.delay(failures: 0, resolved: true, refresh: .seconds(30)) == .seconds(30))
    #expect(
      ServerAddressResolutions.Iterator.delay(failures: 1, resolved: true, refresh: .seconds(30)) == .milliseconds(400))
    #expect(ServerAddressResolutions.Iterator.delay(failures: 9, resolved: false, refresh: .seconds(30)) == .seconds(5))
  }
}
