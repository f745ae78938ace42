import KiamShared

/// A role assumer that becomes available once start-up (base ARN, server credentials) is done.
final class DeferredRoleAssumer: RoleAssumer {
  let ready = AsyncValue<any RoleAssumer>()

  func assume(_ identity: RoleIdentity) async throws -> AWSCredentials {
    try await ready.value.assume(identity)
  }
}
