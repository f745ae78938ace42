import KiamShared
import Testing

@Suite struct GoDurationTests {
  @Test(arguments: [
    ("0", Duration.zero), ("1s", .seconds(1)), ("500ms", .milliseconds(500)), ("15m", .seconds(900)),
    ("1h", .seconds(3600)), ("1h30m", .seconds(5400)), ("2h45m10s", .seconds(9910)), ("1.5s", .milliseconds(1500)),
    (".5s", .milliseconds(500)), ("100us", .microseconds(100)), ("100µs", .microseconds(100)),
    ("10ns", .nanoseconds(10)),
    ("-1m", .seconds(-60)), ("+2s", .seconds(2)),
  ])
  func parses(_ text: String, _ expected: Duration) throws {
    #expect(try GoDuration.parse(text) == expected)
  }

  @Test(arguments: ["", "1", "5", "s", "1x", "1.2.3s", "abc", "1 s", "--1s", "1sm"])
  func rejects(_ text: String) {
    #expect(throws: KiamError.self) { try GoDuration.parse(text) }
  }

  @Test func formatsLikeGo() {
    #expect(GoDuration.format(.seconds(60)) == "1m0s")
    #expect(GoDuration.format(.seconds(900)) == "15m0s")
    #expect(GoDuration.format(.milliseconds(500)) == "500ms")
    #expect(GoDuration.format(.seconds(5400)) == "1h30m0s")
    #expect(GoDuration.format(.milliseconds(1500)) == "1.5s")
    #expect(GoDuration.format(.zero) == "0s")
  }
}

@Suite struct RFC3339Tests {
  @Test func formatsUTC() {
    #expect(RFC3339.format(epochSeconds: 0) == "1970-01-01T00:00:00Z")
    #expect(RFC3339.format(epochSeconds: 1_614_600_900) == "2021-03-01T12:15:00Z")
    #expect(RFC3339.format(epochSeconds: 951_782_400) == "2000-02-29T00:00:00Z")
  }

  @Test func parses() {
    #expect(RFC3339.parse("2021-03-01T12:15:00Z") == 1_614_600_900)
    #expect(RFC3339.parse("2021-03-01T12:15:00.123Z") == 1_614_600_900)
    #expect(RFC3339.parse("2021-03-01T13:15:00+01:00") == 1_614_600_900)
    #expect(RFC3339.parse("2021-03-01T11:15:00-0100") == 1_614_600_900)
    #expect(RFC3339.parse("2021-13-01T12:15:00Z") == nil)
    #expect(RFC3339.parse("yesterday") == nil)
    #expect(RFC3339.parse("2021-03-01T12:15:00Zjunk") == nil)
  }

  @Test func roundTrips() {
    for t in stride(from: Int64(-86_400 * 400), to: 4_102_444_800, by: 7_777_777) {
      #expect(RFC3339.parse(RFC3339.format(epochSeconds: t)) == t)
    }
  }
}

@Suite struct HostPortTests {
  @Test func parses() throws {
    #expect(try HostPort.parse("kiam-server:443") == HostPort(host: "kiam-server", port: 443))
    #expect(try HostPort.parse(":9620") == HostPort(host: "", port: 9620))
    #expect(try HostPort.parse("[::1]:443") == HostPort(host: "::1", port: 443))
    #expect(try HostPort.parse("0.0.0.0:0") == HostPort(host: "0.0.0.0", port: 0))
  }

  @Test(arguments: ["kiam-server", "kiam-server:", "::1:443", "[::1]", "host:99999", "host:port"])
  func rejects(_ text: String) {
    #expect(throws: KiamError.self) { try HostPort.parse(text) }
  }
}

@Suite struct GoRegexpTests {
  @Test func matchesUnanchoredLikeGo() throws {
    let r = try GoRegexp("^/latest/meta-data/placement/")
    #expect(r.matches("/latest/meta-data/placement/availability-zone"))
    #expect(!r.matches("/latest/user-data"))
    #expect(try GoRegexp("foo.*").matches("/bar/foo"))
    #expect(try GoRegexp("^$").matches(""))
    #expect(!(try GoRegexp("^$").matches("/")))
  }

  @Test func invalidRegexpExplains() {
    #expect(throws: KiamError.self) { try GoRegexp("(unclosed") }
  }
}
