import Foundation
import KiamTestSupport
import Testing

/// The documentation stays true: every metric a running server and agent export is documented in
/// docs/metrics.md, the Grafana dashboard only queries documented metrics, and the docs the README
/// links to exist.
@Suite struct DocsTests {
  static let root = KiamProcess.packageRoot

  static func metricsDoc() throws -> String {
    try String(contentsOfFile: "\(root)/docs/metrics.md", encoding: .utf8)
  }

  /// Metric names written in backquotes in docs/metrics.md.
  static func documentedMetrics() throws -> Set<String> {
    let text = try metricsDoc()
    var names = Set<String>()
    for piece in text.split(separator: "`")
    where piece.range(of: #"^(kiam|grpc|process)_[A-Za-z0-9_]+$"#, options: .regularExpression) != nil {
      names.insert(String(piece))
    }
    return names
  }

  @Test func everyExportedMetricIsDocumented() async throws {
    let directory = try TemporaryDirectory(prefix: "kiam-docs")
    defer { directory.remove() }
    let pki = try TestPKIFixture.make(in: directory.path)
    try directory.write(
      "pods/pods.yaml",
      """
      apiVersion: v1
      kind: Namespace
      metadata: {name: apps, annotations: {iam.amazonaws.com/permitted: ".*"}}
      ---
      apiVersion: v1
      kind: Pod
      metadata: {name: web, namespace: apps, uid: uid-web, annotations: {iam.amazonaws.com/role: app-web}}
      status: {phase: Running, podIP: 10.0.0.1}
      """)
    let (serverPort, serverMetrics, agentPort, agentMetrics) = (
      try FreePort.next(), try FreePort.next(), try FreePort.next(), try FreePort.next()
    )
    let server = try KiamProcess(
      [
        "server", "--bind=127.0.0.1:\(serverPort)", "--pod-manifests=\(directory.path)/pods",
        "--role-base-arn=arn:aws:iam::123456789012:role/", "--sts-endpoint=http://127.0.0.1:9",
        "--prometheus-listen-addr=127.0.0.1:\(serverMetrics)",
      ] + pki.server.arguments,
      environment: ["AWS_ACCESS_KEY_ID": "AKIADOCS", "AWS_SECRET_ACCESS_KEY": "secret", "HOME": directory.path])
    defer { server.signal(SIGKILL) }
    let agent = try KiamProcess(
      [
        "agent", "--host=127.0.0.1", "--port=\(agentPort)", "--server-address=localhost:\(serverPort)",
        "--metadata-endpoint=http://127.0.0.1:9", "--allow-ip-query",
        "--prometheus-listen-addr=127.0.0.1:\(agentMetrics)",
      ]
        + pki.agent.arguments)
    defer { agent.signal(SIGKILL) }
    try await FreePort.waitUntilListening(serverPort)
    try await FreePort.waitUntilListening(agentPort)
    // Requests that create the labelled series: a role list, credentials (STS is unreachable, so
    // an error), a blocked proxy path, health.
    for path in [
      "/latest/meta-data/iam/security-credentials/?ip=10.0.0.1",
      "/latest/meta-data/iam/security-credentials/app-web?ip=10.0.0.1",
      "/latest/user-data?ip=10.0.0.1", "/health", "/latest/meta-data/iam/security-credentials/?ip=10.9.9.9",
    ] {
      _ = try? await HTTPGet.fetch("http://127.0.0.1:\(agentPort)\(path)")
    }
    let documented = try Self.documentedMetrics()
    #expect(documented.count > 40)
    for port in [serverMetrics, agentMetrics] {
      let text = try await HTTPGet.text("http://127.0.0.1:\(port)/metrics")
      let exported = try PrometheusText(text).types.keys
      #expect(exported.count > 20)
      for name in exported {
        #expect(documented.contains(name), "\(name) is exported but not in docs/metrics.md")
      }
    }
  }

  @Test func dashboardQueriesOnlyDocumentedMetrics() throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.root)/docs/grafana-dashboard.json"))
    let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    let panels = try #require(dashboard["panels"] as? [[String: Any]])
    let documented = try Self.documentedMetrics()
    var used = Set<String>()
    for panel in panels {
      for target in panel["targets"] as? [[String: Any]] ?? [] {
        let expr = try #require(target["expr"] as? String)
        let regex = try NSRegularExpression(pattern: #"\b(kiam|grpc|process)_[A-Za-z0-9_]+"#)
        for match in regex.matches(in: expr, range: NSRange(expr.startIndex..., in: expr)) {
          var name = String(expr[Range(match.range, in: expr)!])
          for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !documented.contains(name) {
            name = String(name.dropLast(suffix.count))
          }
          used.insert(name)
        }
      }
    }
    #expect(used.count > 20)
    for name in used {
      #expect(documented.contains(name), "the dashboard queries \(name), which docs/metrics.md does not list")
    }
  }

  /// The migration guide's table of namespace regexps is the one the tests run.
  @Test func permittedRegexpTableMatchesTheTestedCases() throws {
    let guide = try String(contentsOfFile: "\(Self.root)/docs/migrating-from-kiam.md", encoding: .utf8)
    func verdict(_ allowed: Bool) -> String { allowed ? "allowed" : "denied" }
    for c in PermittedCase.all {
      let expression = c.expression.replacingOccurrences(of: "|", with: "\\|")
      let row =
        "| `\(expression)` | `\(c.annotation)` | \(verdict(c.v4)) | \(verdict(c.v4Unanchored)) | \(verdict(c.v3)) |"
      #expect(guide.contains(row), "docs/migrating-from-kiam.md lacks the row \(row)")
    }
  }

  /// The first group of every match of `pattern` in the repository file `path`: the links it holds.
  static func links(in path: String, _ pattern: String) throws -> (text: String, links: [String]) {
    let text = try String(contentsOfFile: "\(root)/\(path)", encoding: .utf8)
    let regex = try NSRegularExpression(pattern: pattern)
    let links = regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map {
      String(text[Range($0.range(at: 1), in: text)!])
    }
    return (text, links)
  }

  @Test func linkedDocumentsExist() throws {
    let (readme, links) = try Self.links(in: "README.md", #"\]\(((?:docs/|BENCHMARKS)[^)#]*)\)"#)
    #expect(links.count >= 5)
    for link in links {
      #expect(FileManager.default.fileExists(atPath: "\(Self.root)/\(link)"), "README links to missing \(link)")
    }
    #expect(readme.contains("make demo") && readme.contains("make test"))
  }

  /// docs/architecture.md walks the request path file by file: every file it links to exists.
  @Test func theArchitectureWalkLinksToRealFiles() throws {
    let (_, links) = try Self.links(in: "docs/architecture.md", #"\]\(\.\./(Sources/[^)#]*)\)"#)
    #expect(links.count >= 10)
    for link in links {
      #expect(
        FileManager.default.fileExists(atPath: "\(Self.root)/\(link)"), "docs/architecture.md links to missing \(link)")
    }
  }
}
