import Foundation
import KiamShared
import KiamTestSupport
import Testing

/// Our regular expressions against Go's own `regexp` (scripts/test/go-regexp, built from Debian's
/// golang-go): for every expression, the same compile error text or the same answers, unanchored
/// (MatchString) and anchored as a whole. The corpus: kiam's own tests, kiam-behaviour's examples,
/// the syntax Go rejects, and the expressions that froze the agent and the server.
@Suite(.serialized) struct GoRegexpConformanceTests {
  static let goReason: String? =
    SDKClient.which("go") == nil ? "go missing (scripts/install-test-deps.sh installs golang-go)" : nil

  static let inputs = [
    "", "/", "/latest/meta-data/placement/availability-zone", "/latest/user-data", "/bar/foo", "/foo",
    "arn:aws:iam::123456789012:role/red_role", "arn:aws:iam::123456789012:role/subpath/red_role",
    "arn:aws:iam::123456789012:role/app-web", "arn:aws:iam::999999999999:role/cluster-api", "red_role", "/red_role",
    "orange_role", "app-web", "app-webhook", "cluster-admin", "arn:aws:iam::123456789012:role/cluster-admin",
    "aaaaaaaaaaaaaaaaaa!", "/latest/meta-data/aaaaaaaaaaaaaaaaaaaaa!", "ÄPP-web", "app-web\n", "line1\nline2",
  ]

  static let patterns = [
    // kiam's tests and kiam-behaviour.md
    "^$", "foo.*", "^red.*$|^.red.*$", ".*role", "o", "role", "arn:aws:iam::123456789012:role/.*",
    "arn:aws:iam::123456789012:role/*", ".*/subpath/.*", "arn:aws:iam::123456789012:role/red.*",
    "arn:aws:iam::123456789012:role/subpath/red_role", "^/latest/meta-data/placement/",
    "^/latest/meta-data/instance-id$",
    "arn:aws:iam::(123456789012|999999999999):role/.*", "^app-.*$", "app-.*", "payments|app-.*",
    // Go's syntax, accepted and not
    "(?i)APP-web", "(?s)line1.line2", "(?m)^line2$", "(?U)a+", "\\d+", "[[:alpha:]]+", "\\pL+", "\\p{Greek}",
    "x{2,5}", "x{1001}", "(?P<name>a)", "\\Qa.b\\E", "\\A/", "\\z", "\\Z", "(?=x)", "(?!x)", "(?<=x)", "\\1",
    "(a)\\1", "a**", "a++", "*a", "(unclosed", "unopened)", "[z-a]", "[a", "a\\", "\\C", "\\8", "(?<name>a)",
    "\\b\\w+\\b", "[^/]+", "\\x41", "\\x{1F600}", "(?i)ä", "(?P<n>a)(?P<n>b)", "\\p{Foo}", "[[:foo:]]", "x{2,1}",
    "(?z)", "\\xZZ", "a{,5}", "(?P<>a)", "((((((((((a))))))))))", "[\\d-z]", "a|", "|", "()", "(?:)", "[]a]", "[^]a]",
    "\\Q", "x{0}", "x{1000}", "(?i)(?-i)a", "(?i:A)b", "\\pN", "\\PL", "[\\p{L}]", ".", "^*",
    // the attacks of issue 21
    "arn:aws:iam::123456789012:role/team-a)|(.*", "^/latest/meta-data/([a-z-]+/?)*$",
    "arn:aws:iam::123456789012:role/([a-z0-9]+-?)*", ".*-.*-.*-app", "(a*)*b", "(x+x+)+y",
  ]

  struct GoAnswer: Decodable {
    let error: String?
    let matches: [Bool]?
    let whole: [Bool]?
  }

  /// Go's answers for `patterns` against `inputs`.
  static func goAnswers(_ patterns: [String], _ inputs: [String]) throws -> [GoAnswer] {
    let binary = try SDKClient.buildGo(
      source: "\(KiamProcess.packageRoot)/scripts/test/go-regexp/main.go", name: "go-regexp")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    let stdin = Pipe()
    let stdout = Pipe()
    process.standardInput = stdin
    process.standardOutput = stdout
    try process.run()
    var lines = ""
    for pattern in patterns {
      let request = try JSONSerialization.data(withJSONObject: ["pattern": pattern, "inputs": inputs])
      lines += String(decoding: request, as: UTF8.self) + "\n"
    }
    try stdin.fileHandleForWriting.write(contentsOf: Data(lines.utf8))
    try stdin.fileHandleForWriting.close()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitPolling()
    return try String(decoding: output, as: UTF8.self).split(separator: "\n").map {
      try JSONDecoder().decode(GoAnswer.self, from: Data($0.utf8))
    }
  }

  @Test(.enabled(if: goReason == nil, "\(goReason ?? "")"))
  func everyExpressionGivesGosAnswer() throws {
    let answers = try Self.goAnswers(Self.patterns, Self.inputs)
    try #require(answers.count == Self.patterns.count)
    for (pattern, go) in zip(Self.patterns, answers) {
      let ours = Result { try GoRegexp(pattern) }
      switch (ours, go.error) {
      case (.failure(let error), let goError?):
        #expect((error as? KiamError)?.message == goError, "\(pattern)")
      case (.failure(let error), nil):
        Issue.record("\(pattern): we reject what Go accepts: \(error)")
      case (.success, let goError?):
        Issue.record("\(pattern): we accept what Go rejects: \(goError)")
      case (.success(let regexp), nil):
        for (index, input) in Self.inputs.enumerated() {
          #expect(regexp.matches(input) == go.matches?[index], "\(pattern) on \(input.debugDescription)")
          #expect(regexp.matchesWhole(input) == go.whole?[index], "\(pattern) whole \(input.debugDescription)")
        }
      }
    }
  }

  /// The expressions that froze an event loop for seconds (backtracking) answer in milliseconds,
  /// however long the input.
  @Test func pathologicalExpressionsAreLinear() throws {
    let cases: [(String, String)] = [
      ("^/latest/meta-data/([a-z-]+/?)*$", "/latest/meta-data/" + String(repeating: "a", count: 19) + "!"),
      ("arn:aws:iam::123456789012:role/([a-z0-9]+-?)*", "aaaaaaaaaaaaaaaaaa!"),
      (".*-.*-.*-app", "arn:aws:iam::123456789012:role/" + String(repeating: "a-", count: 385)),
      ("(x+x+)+y", String(repeating: "x", count: 10_000)),
    ]
    for (pattern, input) in cases {
      let regexp = try GoRegexp(pattern)
      let clock = ContinuousClock()
      let started = clock.now
      for _ in 0..<10 {
        _ = regexp.matches(input)
        _ = regexp.matchesWhole(input)
      }
      #expect(clock.now - started < .milliseconds(100), "\(pattern): \(clock.now - started) for 20 matches")
    }
  }
}
