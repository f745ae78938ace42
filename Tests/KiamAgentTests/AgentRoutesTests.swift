import Foundation
import KiamShared
import KiamTestSupport
import Testing

/// Every route of the metadata API through real sockets: a kiam agent process, a kiam server
/// process (static manifests), moto as STS and as the real metadata service.
@Suite(.serialized, .enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
struct AgentRoutesTests {
  @Test func routesStatusesAndBodies() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()

      let ping = try h.get("/ping")
      #expect(ping.status == 200 && ping.body == "pong")

      // Role list: exactly the name, no newline.
      let list = try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.0.1")
      #expect(list.status == 200)
      #expect(list.body == "app-web")
      #expect(list.headers["content-type"]?.hasPrefix("text/plain") == true)
      let empty = try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.0.2")
      #expect(empty.status == 404 && empty.body == "empty role\n")
      let redirect = try h.get("/latest/meta-data/iam/security-credentials")
      #expect(redirect.status == 301)
      #expect(redirect.headers["location"] == "/latest/meta-data/iam/security-credentials/")

      // Credentials.
      let creds = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.0.0.1")
      #expect(creds.status == 200)
      let object = try #require(try JSONSerialization.jsonObject(with: Data(creds.body.utf8)) as? [String: String])
      #expect(object["Code"] == "Success")
      #expect(object["Type"] == "AWS-HMAC")
      #expect(object["AccessKeyId"]?.hasPrefix("ASIA") == true)
      #expect(object["SecretAccessKey"]?.isEmpty == false)
      #expect(object["Token"]?.isEmpty == false)
      let expiration = try #require(object["Expiration"])
      #expect(expiration.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$"#, options: .regularExpression) != nil)
      #expect(object["LastUpdated"]?.hasSuffix("Z") == true)
      #expect(object["AccountId"] == nil)
      let again = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.0.0.1")
      #expect(again.body == creds.body)
      #expect(try h.get("/latest/meta-data/iam/security-credentials/app-web/", ip: "10.0.0.1").body == creds.body)
      let extended = try h.get("/latest/meta-data/iam/security-credentials-extended/app-web", ip: "10.0.0.1")
      #expect(
        try (JSONSerialization.jsonObject(with: Data(extended.body.utf8)) as? [String: String])?["AccountId"]
          == "123456789012")
      #expect(try h.get("/latest/meta-data/iam/security-credentials-extended/", ip: "10.0.0.1").body == "app-web")
      // The wrong role: 404 so SDKs list again.
      #expect(try h.get("/latest/meta-data/iam/security-credentials/other", ip: "10.0.0.1").status == 404)
      // Forbidden by the namespace: kiam's body.
      let forbidden = try h.get("/latest/meta-data/iam/security-credentials/app-db", ip: "10.0.0.3")
      #expect(forbidden.status == 500)
      #expect(forbidden.body == "error fetching credentials: forbidden by policy\n")
      // Unknown pod: kiam's bodies, within the 900 ms budget.
      let clock = ContinuousClock()
      var started = clock.now
      let unknown = try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.9.9.9")
      #expect(clock.now - started < .milliseconds(1000))
      #expect(unknown.status == 500)
      #expect(unknown.body == "rpc error: code = Unknown desc = pod not found\n")
      started = clock.now
      let unknownCreds = try h.get("/latest/meta-data/iam/security-credentials/app-web", ip: "10.9.9.9")
      #expect(clock.now - started < .milliseconds(1000))
      #expect(unknownCreds.status == 500)
      #expect(unknownCreds.body == "error fetching credentials: no pod found\n")
      // Methods.
      #expect(try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.0.1", method: "POST").status == 405)

      // Pass-through: allow-listed only, the rest blocked with kiam's body.
      let zone = try h.get("/latest/meta-data/placement/availability-zone")
      #expect(zone.status == 200 && zone.body == "us-east-1a")
      let userData = try h.get("/latest/user-data")
      #expect(userData.status == 404)
      #expect(
        userData.body == "request blocked by allow-route-regexp \"^/latest/meta-data/placement/\": /latest/user-data\n")
      #expect(try h.get("/latest/meta-data/instance-id").status == 404)
      // Dot segments cannot sneak past the allow-list.
      let sneaky = try h.get("/latest/meta-data/placement/../../user-data")
      #expect(sneaky.status == 301 && sneaky.headers["location"] == "/latest/user-data")

      // Health: the real metadata service's instance id; deep also asks the server.
      let health = try h.get("/health")
      #expect(health.status == 200 && health.body == "i-fake")
      #expect(try h.get("/health?deep=1").status == 200)

      // Metrics with kiam's names.
      let page = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(h.metricsPort)/metrics"))
      #expect((page.value("kiam_metadata_responses_total", ["handler": "credentials", "code": "200"]) ?? 0) >= 3)
      #expect((page.value("kiam_metadata_success_total", ["handler": "roleName"]) ?? 0) >= 1)
      #expect((page.value("kiam_metadata_empty_role_total", ["handler": "roleName"]) ?? 0) >= 1)
      #expect((page.value("kiam_metadata_find_role_errors_total", ["handler": "roleName"]) ?? 0) >= 1)
      #expect((page.value("kiam_metadata_credential_fetch_errors_total", ["handler": "credentials"]) ?? 0) >= 2)
      #expect((page.value("kiam_metadata_proxy_requests_blocked_total") ?? 0) >= 2)
      #expect((page.value("kiam_metadata_handler_latency_seconds_count", ["handler": "credentials"]) ?? 0) >= 3)
      #expect((page.value("kiam_metadata_handler_latency_seconds_count", ["handler": "health"]) ?? 0) >= 2)
      #expect(
        (page.value(
          "grpc_client_handled_total",
          [
            "grpc_type": "unary", "grpc_service": "kiam.KiamService", "grpc_method": "GetPodCredentials",
            "grpc_code": "OK",
          ]) ?? 0) >= 1)
      #expect(page.value("grpc_client_tls_certificate_update_error") == 0)
    }
  }

  @Test func credentialPathsAreNeverPassedThrough() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(allowRoutes: ".*")
      // Even with everything allow-listed, the node's credentials never reach pods.
      let creds = try h.get("/latest/meta-data/iam/security-credentials/default-role", ip: "10.0.0.1")
      #expect(creds.status == 404)
      #expect(!creds.body.contains("test-key"))
      let identity = try h.get("/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance")
      #expect(identity.status == 404)
      #expect(try h.get("/latest/meta-data/iam/security-credentials/", ip: "10.0.0.1").body == "app-web")
      #expect(try h.get("/latest/meta-data/instance-id").body == "i-fake")
    }
  }

  @Test func imdsv2TokenRules() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()
      let put = try h.get(
        "/latest/api/token", method: "PUT", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "21600"])
      #expect(put.status == 200)
      #expect(put.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600")
      let token = put.body
      #expect(!token.isEmpty)
      // As EC2: digits only, no sign, no leading zero.
      for bad in ["", "0", "21601", "abc", "-5", "+5", "0060", "6 0", "1e3", "٦٠"] {
        let response = try h.get(
          "/latest/api/token", method: "PUT", headers: bad.isEmpty ? [:] : ["X-aws-ec2-metadata-token-ttl-seconds": bad]
        )
        #expect(response.status == 400, "ttl \(bad)")
      }
      let forwarded = try h.get(
        "/latest/api/token", method: "PUT",
        headers: ["X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"])
      #expect(forwarded.status == 403)
      #expect(try h.get("/latest/api/token").status == 405)
      // The token works for its caller (127.0.0.1, pod "local").
      let path = "/latest/meta-data/iam/security-credentials/"
      #expect(try h.get(path, headers: ["X-aws-ec2-metadata-token": token]).body == "app-local")
      // Tokenless (IMDSv1) requests are allowed by default, and so is a request whose token does
      // not check (forged, another caller's, expired): Go kiam never looked at tokens, and the Go
      // SDK v1 fails the call on a 401. Each is counted.
      #expect(try h.get(path).status == 200)
      #expect(try h.get(path, headers: ["X-aws-ec2-metadata-token": "forged"]).body == "app-local")
      #expect(try h.get(path, ip: "10.0.0.1", headers: ["X-aws-ec2-metadata-token": token]).body == "app-web")
      let short = try h.get("/latest/api/token", method: "PUT", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "1"])
        .body
      try await Task.sleep(for: .milliseconds(2100))
      #expect(try h.get(path, headers: ["X-aws-ec2-metadata-token": short]).body == "app-local")
      let samples = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(h.metricsPort)/metrics"))
      for reason in ["invalid", "wrong_caller", "expired"] {
        #expect(
          samples.value("kiam_agent_imds_token_rejected_total", ["reason": reason, "outcome": "served_as_v1"]) == 1,
          "\(reason)")
      }
    }
  }

  /// Only a request that checked the caller vouches for its connection: a keep-alive connection
  /// that so far only fetched an IMDSv2 token is checked like a new one. (On loopback there is no
  /// neighbor entry, so only a confirmation younger than a second counts.)
  @Test func aTokenRequestDoesNotVouchForItsConnection() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()
      let path = "/latest/meta-data/iam/security-credentials/"
      #expect(try h.get(path).body == "app-local")
      let connection = try RawSocket(port: h.agentPort)
      try connection.send(
        "PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n\r\n")
      let token = String(connection.receiveResponse().split(separator: "\r\n\r\n", maxSplits: 1).last ?? "")
      #expect(!token.isEmpty)
      // 127.0.0.1 now belongs to another pod.
      try await h.moveLocalPodToAnotherPod()
      try connection.send("GET \(path) HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token: \(token)\r\n\r\n")
      let listed = connection.receiveResponse()
      #expect(listed.hasSuffix("\r\n\r\napp-other"), "\(listed)")
      // Later requests on this connection, now checked, keep their pod.
      try connection.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
      #expect(connection.receiveResponse().hasSuffix("\r\n\r\napp-other"))
    }
  }

  /// A keep-alive connection answers its repeated requests from its own copy of the answer, and
  /// the copy dies the moment the agent learns that the IP belongs to another pod.
  @Test func aKeepAliveConnectionLosesItsCredentialsWhenItsIPMovesToAnotherPod() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()
      let credentials = "/latest/meta-data/iam/security-credentials/app-local"
      let connection = try RawSocket(port: h.agentPort)
      var bodies: [String] = []
      for _ in 0..<5 {
        try connection.send("GET \(credentials) HTTP/1.1\r\nHost: x\r\n\r\n")
        let response = connection.receiveResponse()
        #expect(response.hasPrefix("HTTP/1.1 200"), "\(response)")
        bodies.append(String(response.split(separator: "\r\n\r\n", maxSplits: 1).last ?? ""))
      }
      #expect(bodies[0].contains("\"AccessKeyId\":\"ASIA"))
      #expect(Set(bodies).count == 1, "the same credentials on every request")
      // 127.0.0.1 now belongs to another pod.
      try await h.moveLocalPodToAnotherPod()
      // A new connection (the new pod) makes the agent ask the server, which names the new pod.
      #expect(try h.get("/latest/meta-data/iam/security-credentials/").body == "app-other")
      // The old connection gets nothing of the old pod's any more.
      try connection.send("GET \(credentials) HTTP/1.1\r\nHost: x\r\n\r\n")
      let after = connection.receiveResponse()
      #expect(after.hasPrefix("HTTP/1.1 404"), "\(after)")
      #expect(!after.contains("AccessKeyId"))
    }
  }

  /// A caller without a neighbour entry (here loopback) is re-checked with the server on every
  /// new connection; once the server confirms the same pod, the credentials the agent already
  /// holds are served without asking the server for them again.
  @Test func aNewConnectionOfAKnownPodCostsOneServerCall() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      let serverMetrics = try FreePort.next()
      try await h.startServer(["--prometheus-listen-addr=127.0.0.1:\(serverMetrics)"])
      try await h.startAgent()
      @Sendable func started(_ method: String) async throws -> Double {
        let page = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(serverMetrics)/metrics"))
        return page.samples.filter { $0.name == "grpc_server_started_total" && $0.labels["grpc_method"] == method }
          .map(\.value).reduce(0, +)
      }
      let credentials = "/latest/meta-data/iam/security-credentials/app-local"
      let first = try h.get(credentials)
      #expect(first.status == 200, "\(first.body)")
      let (roles, issued) = (try await started("GetPodRole"), try await started("GetPodCredentials"))
      #expect(roles >= 1 && issued >= 1)
      // Older than the 1 s a confirmation counts for callers without a neighbour entry.
      try await Task.sleep(for: .milliseconds(1300))
      let again = try h.get(credentials)
      #expect(again.status == 200, "\(again.body)")
      #expect(again.body == first.body, "the credentials the agent holds")
      #expect(try await started("GetPodRole") == roles + 1, "the new connection was checked with the server")
      #expect(try await started("GetPodCredentials") == issued, "and the held credentials were not fetched again")
    }
  }

  @Test func requireIMDSv2RefusesTokenlessRequests() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent(["--require-imdsv2", "--json-log"])
      let path = "/latest/meta-data/iam/security-credentials/"
      #expect(try h.get(path).status == 401)
      let token = try h.get("/latest/api/token", method: "PUT", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "60"])
        .body
      #expect(try h.get(path, headers: ["X-aws-ec2-metadata-token": token]).body == "app-local")
      #expect(try h.get("/ping").status == 200)
      // Tokens that do not check are refused, as EC2 does, and each 401 is counted and logged.
      let forged = try h.get(path + "app-local", headers: ["X-aws-ec2-metadata-token": "forged"])
      #expect(forged.status == 401 && forged.body == "invalid session token\n")
      #expect(try h.get(path, ip: "10.0.0.1", headers: ["X-aws-ec2-metadata-token": token]).status == 401)
      let short = try h.get("/latest/api/token", method: "PUT", headers: ["X-aws-ec2-metadata-token-ttl-seconds": "1"])
        .body
      try await Task.sleep(for: .milliseconds(2100))
      #expect(try h.get(path, headers: ["X-aws-ec2-metadata-token": short]).body == "session token expired\n")
      let samples = try PrometheusText(try await HTTPGet.text("http://127.0.0.1:\(h.metricsPort)/metrics"))
      #expect(samples.value("kiam_metadata_responses_total", ["handler": "roleName", "code": "401"]) == 3)
      #expect(samples.value("kiam_metadata_responses_total", ["handler": "credentials", "code": "401"]) == 1)
      for (reason, count) in [("missing", 1.0), ("invalid", 1), ("wrong_caller", 1), ("expired", 1)] {
        #expect(
          samples.value("kiam_agent_imds_token_rejected_total", ["reason": reason, "outcome": "refused"]) == count,
          "\(reason)")
      }
      let lines = h.agent?.standardError.split(separator: "\n").filter { $0.contains("\"status\":\"401\"") } ?? []
      #expect(lines.count == 4, "\(lines)")
      #expect(
        lines.contains { $0.contains("\"token\":\"wrong_caller\"") && $0.contains("\"addr\":\"10.0.0.1\"") }, "\(lines)"
      )
    }
  }

  @Test func botocoreGetsThePodsCredentialsWithV2AndV1() async throws {
    let h = try await AgentHarness()
    try await withCleanup({ await h.stop() }) {
      try await h.startServer()
      try await h.startAgent()
      let expected = try #require(
        try JSONSerialization.jsonObject(
          with: Data(h.get("/latest/meta-data/iam/security-credentials/app-local").body.utf8))
          as? [String: String])["AccessKeyId"]
      for mode in ["v2", "v1"] {
        let result = try h.botocore([mode])
        #expect(result["access_key"] as? String == expected, "\(mode): \(result)")
        #expect(result["error"] == nil)
      }
      let v1 = try h.botocore(["v1"])
      #expect(v1["role"] as? String == "app-local")
    }
  }

}
