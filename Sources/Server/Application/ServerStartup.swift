import AsyncHTTPClient
import KiamShared
import Logging
import ServiceLifecycle

/// Start-up work that may take a while and must not block the listener: detecting the role
/// base ARN (`--role-base-arn-autodetect`, retried with backoff), finding the server's own AWS
/// credentials and chaining `--assume-role-arn` on top. Until it is done the server reports
/// not ready. A failure ends the server with the reason.
struct ServerStartup: Service {
  let configuration: ServerConfiguration
  let state: ServerState
  let coordinator: PrefetchCoordinator
  let assumer: DeferredRoleAssumer
  let http: HTTPClient
  let sts: STSClient
  let metadata: InstanceMetadataClient
  let logger: Logger
  var autodetectTimeout: Duration = .seconds(120)

  func run() async throws {
    let base: String
    if configuration.roleBaseARNAutodetect {
      base = try await BaseARNDetector.detect(metadata, timeout: autodetectTimeout, logger: logger)
      logger.info("detected role base ARN", metadata: ["base_arn": "\(base)"])
    } else if let configured = configuration.roleBaseARN {
      base = configured
    } else {
      throw KiamError.flag(
        "role-base-arn",
        "role-base-arn not specified and not auto-detected. please specify or use --role-base-arn-autodetect")
    }
    let resolver = RoleARNResolver(baseARN: base)
    var source = try AWSCredentialChain.resolve(
      environment: configuration.environment, http: http, sts: sts, metadata: metadata, logger: logger)
    if let assumeRole = configuration.assumeRoleARN {
      let role = try resolver.resolve(assumeRole)
      let base = source
      let sts = self.sts
      source = RefreshingCredentialProvider(name: "assumed role \(role.arn) via \(base.name)") {
        let key = try await base.accessKey()
        return try await sts.assumeRole(
          roleARN: role.arn, sessionName: "kiam-server", durationSeconds: 3600, externalID: nil, using: key
        ).key
      }
    }
    logger.info(
      "AWS credentials ready",
      metadata: ["credentials.source": "\(source.name)", "sts.endpoint": "\(sts.endpoint)"])
    assumer.ready.succeed(
      STSRoleAssumer(
        sts: sts, source: source, sessionDuration: configuration.sessionDuration, defaultSession: configuration.session)
    )
    state.setResolver(resolver)
    coordinator.reevaluateAll()
    try? await gracefulShutdown()
  }
}
