import Foundation
import KiamTestSupport
import Testing

/// Dual-stack pods whose SDKs use the IPv6 metadata endpoint
/// (`AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`, `http://[fd00:ec2::254]`): the agent, given
/// both of the node's addresses (`HOST_IP` from `status.podIPs`), adds the ip6tables rule too,
/// answers on IPv6 and finds the pod by its IPv6 address (`status.podIPs`). The node has its own
/// IPv6 metadata service, as a Nitro instance with the IPv6 endpoint enabled does: without the
/// rule, pods would get the node's role from it. Each pod's IPv4 route to 169.254.169.254 is
/// blocked, so only the IPv6 path can answer. Root only.
@Suite(
  .serialized, .enabled(if: E2EEnvironment.sdkUnavailableReason == nil, "\(E2EEnvironment.sdkUnavailableReason ?? "")"))
struct DualStackE2ETests {
  static let ipv6Mode = ["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE": "IPv6"]

  @Test func ipv6PodsGetTheirOwnRolesThroughTheIPv6Endpoint() async throws {
    let env = try await E2EEnvironment()
    // The node's own IPv6 metadata service (the instance role, default-role).
    let nodeMetadataIPv6 = try await STSLab(namespace: env.lab.node, host: "fd00:ec2::254", port: 80)
    try await withCleanup({
      nodeMetadataIPv6.stop()
      await env.tearDown()
    }) {
      env.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
      var pods: [String: (ipv4: String, ipv6: String)] = [:]
      for name in ["web", "batch"] {
        let addresses = try env.lab.addDualStackPod(name)
        pods[name] = addresses
        env.api.upsertPod(
          TestPod(
            namespace: "apps", name: name, ip: addresses.ipv4, ips: [addresses.ipv4, addresses.ipv6],
            role: "app-\(name)"))
        let blocked = try env.lab.run(inPod: name, "ip route add prohibit 169.254.169.254/32")
        #expect(blocked.status == 0, "\(blocked.output)")
      }
      // And a pod of the IPv4 family only, on the same node.
      let plainIP = try env.lab.addPod("plain")
      env.api.upsertPod(TestPod(namespace: "apps", name: "plain", ip: plainIP, role: "app-plain"))
      try await env.startServer()
      try await env.startAgent(host: "\(env.lab.nodeIP),\(env.lab.nodeIPv6)")

      // One rule per family, each to the agent's address of that family.
      let rules = try env.lab.run(onNode: "iptables -t nat -S PREROUTING; ip6tables -t nat -S PREROUTING").output
      #expect(
        rules.contains("-d 169.254.169.254/32")
          && rules.contains("--to-destination \(env.lab.nodeIP):\(env.agentPort)"), "\(rules)")
      #expect(
        rules.contains("-d fd00:ec2::254/128")
          && rules.contains("--to-destination [\(env.lab.nodeIPv6)]:\(env.agentPort)"), "\(rules)")
      // For contrast: the node's own IPv6 metadata service answers on the node with its role.
      #expect(
        try env.lab.run(onNode: "curl -s -g http://[fd00:ec2::254]/latest/meta-data/iam/security-credentials/").output
          == "default-role")

      // The raw IMDSv2 flow on the IPv6 address.
      let base = "http://[fd00:ec2::254]/latest"
      let flow = try env.lab.run(
        inPod: "web",
        """
        T=$(curl -s -g --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \(base)/api/token)
        curl -s -g --max-time 2 -w ' %{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" \(base)/meta-data/iam/security-credentials/
        curl -s -g --max-time 2 -o /dev/null -w '%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" \(base)/meta-data/iam/security-credentials/app-web
        curl -s -g --max-time 2 -o /dev/null -w '%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" \(base)/meta-data/iam/security-credentials/app-batch
        """
      ).output
      #expect(flow == "app-web 200\n200\n404\n", "\(flow)")

      // Unmodified SDKs in IPv6 mode: boto3, the CLI, Go v1, Go v2, Ruby; each pod its own role.
      for name in ["web", "batch"] {
        let arn = "arn:aws:sts::123456789012:assumed-role/app-\(name)/kiam-kiam"
        let boto = try env.lab.run(
          inPod: name,
          "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 python3 \(KiamProcess.packageRoot)/scripts/test/botocore_client.py v2"
        ).output
        #expect(boto.contains("\"method\": \"iam-role\""), "\(name) boto3: \(boto)")
        let identity = try env.lab.run(
          inPod: name,
          "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6 aws sts get-caller-identity --endpoint-url \(E2EEnvironment.stsEndpoint) --query Arn --output text 2>&1"
        ).output
        #expect(identity.trimmingCharacters(in: .whitespacesAndNewlines) == arn, "\(name) awscli: \(identity)")
        for kind in SDKClient.Kind.allCases where kind != .botocore {
          let client = try SDKClient(
            kind,
            prefix: env.lab.podPrefix(
              name, environment: Self.ipv6Mode.merging(["STS_ENDPOINT": E2EEnvironment.stsEndpoint]) { $1 }))
          defer { client.stop() }
          let answer = try await client.fetch()
          #expect(answer["error"] == nil && answer["arn"] == arn, "\(client.name): \(answer) \(client.standardError)")
        }
      }
      #expect(try env.callerIdentity("plain") == "arn:aws:sts::123456789012:assumed-role/app-plain/kiam-kiam")
      // Without IPv6 mode the SDK tries 169.254.169.254, which this pod cannot reach: the answers
      // above came over IPv6.
      let ipv4Only = try env.lab.run(
        inPod: "web",
        "curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://169.254.169.254/latest/meta-data/iam/security-credentials/"
      ).output
      #expect(ipv4Only == "000", "\(ipv4Only)")

      // The agent removes both rules when it stops.
      env.agent?.signal(SIGTERM)
      #expect(await env.agent?.wait(timeout: .seconds(10)) == 0)
      let after = try env.lab.run(onNode: "iptables -t nat -S PREROUTING; ip6tables -t nat -S PREROUTING").output
      #expect(!after.contains("kiam agent"), "\(after)")
    }
  }
}
