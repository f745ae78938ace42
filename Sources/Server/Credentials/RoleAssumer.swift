import KiamShared

/// Turns a role identity into credentials (one STS call).
protocol RoleAssumer: Sendable {
  func assume(_ identity: RoleIdentity) async throws -> AWSCredentials
}

/// AssumeRole with the server's own credentials (possibly already an assumed `--assume-role-arn`).
struct STSRoleAssumer: RoleAssumer {
  let sts: STSClient
  let source: any AWSCredentialProvider
  let sessionDuration: Duration
  let defaultSession: String

  func assume(_ identity: RoleIdentity) async throws -> AWSCredentials {
    let key: AWSAccessKey
    do {
      key = try await source.accessKey()
    } catch let error as STSError {
      throw CredentialsError(
        code: error.code, message: "server credentials (\(source.name)): \(error.message)",
        isTransient: error.isTransient)
    } catch {
      throw CredentialsError(
        code: "NoServerCredentials", message: "server credentials (\(source.name)): \(KiamError.describe(error))",
        isTransient: true)
    }
    do {
      let result = try await sts.assumeRole(
        roleARN: identity.role.arn, sessionName: identity.sessionName(defaultSession: defaultSession),
        durationSeconds: Int(sessionDuration.seconds),
        externalID: identity.externalID.isEmpty ? nil : identity.externalID,
        using: key)
      return AWSCredentials(
        accessKeyID: result.key.accessKeyID, secretAccessKey: result.key.secretAccessKey,
        sessionToken: result.key.sessionToken ?? "", expiration: Int64(result.key.expiration ?? 0),
        lastUpdated: WallClock.system.now())
    } catch let error as STSError {
      throw error.credentialsError
    }
  }
}
