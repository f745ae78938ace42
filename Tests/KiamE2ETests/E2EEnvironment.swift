import Foundation
import KiamTestSupport

/// The end-to-end suite's node (see ``NodeEnvironment``), with moto checking signatures.
typealias E2EEnvironment = NodeEnvironment

extension NodeEnvironment {
  /// Why the real SDK clients (``SDKClient/Kind``) cannot run here in pods, or nil.
  static let sdkUnavailableReason: String? =
    unavailableReason
    ?? SDKClient.Kind.allCases.compactMap { kind in kind.unavailableReason.map { "\(kind): \($0)" } }.first

  /// The Cluster API provider's controller (pod `capa`), annotated with a role of the target
  /// account (999999999999), as in the seed scenario.
  func addCAPAControllerPod() throws {
    let ip = try lab.addPod("capa")
    api.upsertPod(
      TestPod(
        namespace: "aws-provider-system", name: "aws-provider-controller-manager-0", ip: ip,
        role: "arn:aws:iam::999999999999:role/cluster-api"))
  }

  // MARK: Clients inside pods

  /// boto3 `Session().get_credentials()` in the pod, no endpoint override.
  func boto3(_ pod: String) throws -> [String: Any] {
    let output = try lab.run(inPod: pod, "python3 \(KiamProcess.packageRoot)/scripts/test/botocore_client.py v2").output
    return (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]) ?? ["raw": output]
  }

  /// `aws sts get-caller-identity` in the pod, against moto, with credentials from the metadata API.
  func callerIdentity(_ pod: String) throws -> String? {
    let output = try lab.run(
      inPod: pod, "aws sts get-caller-identity --endpoint-url \(Self.stsEndpoint) --output json 2>&1"
    ).output
    return (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["Arn"] as? String
  }

  /// The raw IMDSv2 flow with curl: token, role list, credentials. Returns (status, body) of each.
  func curlFlow(_ pod: String, role: String? = nil) throws -> (
    token: String, list: (Int, String), credentials: (Int, String)
  ) {
    let base = "http://169.254.169.254/latest"
    let script = """
      T=$(curl -s --max-time 2 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' \(base)/api/token)
      echo "TOKEN=$T"
      curl -s --max-time 2 -w '\\nSTATUS=%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" \(base)/meta-data/iam/security-credentials/
      R=\(role.map { "'\($0)'" } ?? "$(curl -s --max-time 2 -H \"X-aws-ec2-metadata-token: $T\" \(base)/meta-data/iam/security-credentials/)")
      echo "---"
      curl -s --max-time 2 -w '\\nSTATUS=%{http_code}\\n' -H "X-aws-ec2-metadata-token: $T" "\(base)/meta-data/iam/security-credentials/$R"
      """
    let output = try lab.run(inPod: pod, script).output
    let token = output.split(separator: "\n").first { $0.hasPrefix("TOKEN=") }.map { String($0.dropFirst(6)) } ?? ""
    let parts = output.components(separatedBy: "---\n")
    func parse(_ text: String) -> (Int, String) {
      let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
      let status = lines.last { $0.hasPrefix("STATUS=") }.flatMap { Int($0.dropFirst(7)) } ?? 0
      let body = lines.filter { !$0.hasPrefix("STATUS=") && !$0.hasPrefix("TOKEN=") }.joined(separator: "\n")
        .trimmingCharacters(in: .newlines)
      return (status, body)
    }
    return (token, parse(parts.first ?? ""), parse(parts.count > 1 ? parts[1] : ""))
  }
}
