import Foundation
import KiamShared
import Logging

/// `--role-base-arn-autodetect`: the account (and partition) of the instance profile, from
/// `/latest/meta-data/iam/info`, as `arn:<partition>:iam::<account>:role/` (kiam §5.10).
enum BaseARNDetector {
  private struct IAMInfo: Decodable {
    let Code: String?
    let InstanceProfileArn: String?
  }

  /// One attempt.
  static func detectOnce(_ metadata: InstanceMetadataClient) async throws -> String {
    let body = try await metadata.get("/latest/meta-data/iam/info")
    let info: IAMInfo
    do {
      info = try JSONDecoder().decode(IAMInfo.self, from: Data(body.utf8))
    } catch {
      throw KiamError(
        code: .upstream, message: "\(metadata.endpoint)/latest/meta-data/iam/info: not JSON", cause: error)
    }
    guard info.Code == nil || info.Code == "Success", let arn = info.InstanceProfileArn else {
      throw KiamError(
        code: .upstream,
        message: "\(metadata.endpoint)/latest/meta-data/iam/info: no InstanceProfileArn (Code \(info.Code ?? "?"))")
    }
    return try RoleARNResolver.baseARN(fromInstanceProfileARN: arn)
  }

  /// Retries with backoff (the metadata service or network may not be ready at boot) for up to
  /// `timeout`, then fails naming the path and the last error.
  static func detect(_ metadata: InstanceMetadataClient, timeout: Duration, logger: Logger) async throws -> String {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(5))
    while true {
      do {
        return try await detectOnce(metadata)
      } catch {
        let delay = backoff.next()
        if clock.now + delay > deadline {
          throw KiamError(
            code: .upstream,
            message:
              "cannot detect the role base ARN (--role-base-arn-autodetect) from \(metadata.endpoint)/latest/meta-data/iam/info after \(GoDuration.format(timeout)); set --role-base-arn instead",
            cause: error)
        }
        logger.warning(
          "detecting role base ARN failed, retrying",
          metadata: ["error": "\(KiamError.describe(error))", "retry_in": "\(GoDuration.format(delay))"])
        try await Task.sleep(for: delay)
      }
    }
  }
}
