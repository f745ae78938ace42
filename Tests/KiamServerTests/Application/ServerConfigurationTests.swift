import KiamShared
import Testing

@testable import KiamServer

/// ``ServerConfiguration/validated()``: the one place for rules between fields, for the CLI and
/// for configurations built in code alike.
@Suite struct ServerConfigurationTests {
  static func configuration(_ change: (inout ServerConfiguration) -> Void) -> ServerConfiguration {
    var config = ServerConfiguration(tls: TLSFiles(certificatePath: "c", keyPath: "k", caPath: "ca"))
    config.roleBaseARN = "arn:aws:iam::123456789012:role/"
    change(&config)
    return config
  }

  @Test func defaultsPassAndGetTheDefaultFloor() throws {
    let (valid, warnings) = try Self.configuration { _ in }.validated()
    #expect(warnings.isEmpty)
    #expect(valid.minCredentialLifetime == .seconds(1800))
    let (short, _) = try Self.configuration { $0.sessionDuration = .seconds(15 * 60) }.validated()
    #expect(short.minCredentialLifetime == .seconds(300))
    #expect(short.credentialFloor == .seconds(300))
  }

  @Test func aChainedRoleCapsTheSessionBeforeTheFloorIsChecked() throws {
    let chained = Self.configuration {
      $0.assumeRoleARN = "arn:aws:iam::123456789012:role/kiam"
      $0.sessionDuration = .seconds(2 * 3600)
    }
    let (valid, warnings) = try chained.validated()
    #expect(valid.sessionDuration == .seconds(3600))
    #expect(warnings.count == 1)
    // Idempotent: validating again changes nothing and warns no more.
    let (again, more) = try valid.validated()
    #expect(again.sessionDuration == valid.sessionDuration)
    #expect(more.isEmpty)
    // A floor of 1 h on what will be 1 h sessions: refused, naming the cap.
    var floor = chained
    floor.minCredentialLifetime = .seconds(3600)
    let error = #expect(throws: KiamError.self) { try floor.validated() }
    #expect(error?.message.contains("with --assume-role-arn") == true, "\(String(describing: error))")
  }

  static let refusals: [(String, ServerConfiguration, String)] = [
    ("no base ARN", configuration { $0.roleBaseARN = nil }, "role-base-arn not specified"),
    ("base ARN without a slash", configuration { $0.roleBaseARN = "arn:aws:iam::1:role" }, "ending in '/'"),
    ("session too short", configuration { $0.sessionDuration = .seconds(60) }, "at least 15 minutes"),
    ("session too long", configuration { $0.sessionDuration = .seconds(13 * 3600) }, "at most 12h"),
    ("refresh not below the session", configuration { $0.sessionRefresh = .seconds(3600) }, "session-refresh"),
  ]

  @Test(arguments: refusals)
  func refused(_ name: String, _ config: ServerConfiguration, _ text: String) {
    let error = #expect(throws: KiamError.self, "\(name)") { try config.validated() }
    #expect(error?.description.contains(text) == true, "\(name): \(String(describing: error))")
  }
}
