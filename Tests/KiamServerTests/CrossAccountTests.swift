import Foundation
import GRPCCore
import KiamShared
import KiamTestSupport
import Logging
import Testing

@testable import KiamServer

/// The Cluster API cross-account set-up (kiam's docs and the seeds): the node's credentials
/// assume `kiam_server` (`--assume-role-arn`), which assumes a role in another account for a pod
/// annotated with that role's full ARN, in a namespace permitting `.*`. moto checks signatures.
@Suite(.serialized, .enabled(if: STSLab.isAvailable, "needs moto: scripts/install-test-deps.sh"))
struct CrossAccountTests {
  @Test func podGetsTheTargetAccountRoleThroughTheServerRole() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    let auth = try await lab.enableAuthentication()
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      harness.api.api.upsertNamespace(TestNamespace(name: "aws-provider-system", permitted: ".*"))
      harness.api.api.upsertPod(
        TestPod(
          namespace: "aws-provider-system", name: "aws-provider-controller-manager-0", ip: "10.0.9.9",
          role: "arn:aws:iam::999999999999:role/cluster-api"))
      let metrics = KiamMetrics()
      let credentials = try await harness.run(
        credentials: nil, metrics: metrics,
        configure: { config in
          config.roleBaseARN = nil
          config.roleBaseARNAutodetect = true  // from the lab's instance metadata: arn:aws:iam::123456789012:role/
          config.assumeRoleARN = "kiam_server"  // a short name, resolved through the base ARN (kiam v4.1)
          config.stsEndpoint = lab.endpoint
          config.environment = [
            "AWS_ACCESS_KEY_ID": auth.AccessKeyId, "AWS_SECRET_ACCESS_KEY": auth.SecretAccessKey,
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": lab.endpoint, "HOME": "/nonexistent",
          ]
        }
      ) { client async throws in
        #expect(await eventually(timeout: .seconds(20)) { (try? await client.health()) == "ok" })
        // Prefetched before any request.
        #expect(
          await eventually(timeout: .seconds(10)) {
            ((try? await lab.stats())?.calls("arn:aws:iam::999999999999:role/cluster-api") ?? 0) == 1
          })
        // ...and stored: moto counts the call before the server has its answer, and a request in
        // between waits for the prefetch instead of hitting the cache.
        #expect(
          await eventually(timeout: .seconds(10)) {
            (try? PrometheusText(metrics.registry.emitToString()))?.value("kiam_sts_cacheSize") == 1
          })
        let first = try await client.creds("10.0.9.9", "arn:aws:iam::999999999999:role/cluster-api")
        let second = try await client.creds("10.0.9.9", "arn:aws:iam::999999999999:role/cluster-api")
        #expect(first.accessKeyID == second.accessKeyID)
        return first
      }
      let stats = try await lab.stats()
      #expect(stats.calls("arn:aws:iam::999999999999:role/cluster-api") == 1)
      #expect(stats.calls(auth.ServerRoleArn) == 1)
      // Whose credentials are these? Ask STS (signature checked by moto).
      let arn = try await withAWSHTTP { http in
        try await STSClient(
          endpoint: STSEndpoint.resolve(region: nil, override: lab.endpoint), http: http, logger: Logger(label: "test")
        ).callerIdentity(
          using: AWSAccessKey(
            accessKeyID: credentials.accessKeyID, secretAccessKey: credentials.secretAccessKey,
            sessionToken: credentials.token))
      }
      #expect(arn == "arn:aws:sts::999999999999:assumed-role/cluster-api/kiam-kiam")
      let page = try PrometheusText(metrics.registry.emitToString())
      #expect(page.value("kiam_sts_cacheSize") == 1)
      #expect((page.value("kiam_sts_cache_hit_total") ?? 0) >= 2)
      #expect(page.value("kiam_sts_assumerole_total", ["outcome": "success", "reason": "prefetch"]) == 1)
    }
  }

  @Test func stsDenialReachesTheAgentAndAnEvent() async throws {
    let lab = try await STSLab()
    defer { lab.stop() }
    try await lab.setFaults(["deny_role": "no-trust"])
    let harness = try await ServerHarness.make()
    try await withCleanup({ await harness.stop() }) {
      harness.api.api.upsertNamespace(TestNamespace(name: "apps", permitted: ".*"))
      harness.api.api.upsertPod(TestPod(namespace: "apps", name: "w", ip: "10.0.8.1", role: "no-trust"))
      try await harness.run(
        credentials: nil,
        configure: { config in
          config.stsEndpoint = lab.endpoint
          config.environment = ["AWS_ACCESS_KEY_ID": "AKIAX", "AWS_SECRET_ACCESS_KEY": "y", "HOME": "/nonexistent"]
        }
      ) { client async throws in
        #expect(await eventually(timeout: .seconds(20)) { (try? await client.health()) == "ok" })
        let (code, message) = await rpcMessage { _ = try await client.creds("10.0.8.1", "no-trust") }
        #expect(code == .unknown)
        #expect(message.hasPrefix("AccessDenied: User: arn:aws:iam::123456789012:user/kiam-node is not authorized"))
        #expect(
          await eventually(timeout: .seconds(15)) {
            harness.api.api.recordedEvents.contains {
              $0.reason == "KiamCredentialError"
                && $0.message?.hasPrefix("failed retrieving credentials: AccessDenied:") == true
            }
          })
      }
    }
  }
}
