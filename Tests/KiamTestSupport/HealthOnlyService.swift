import GRPCCore
import KiamShared

/// A `kiam.KiamService` that answers `GetHealth` with `ok`, for transport tests.
public struct HealthOnlyService: Kiam_KiamService.SimpleServiceProtocol {
  public init() {}

  public func getPodRole(request: Kiam_GetPodRoleRequest, context: ServerContext) async throws -> Kiam_Role {
    throw RPCError(code: .unimplemented, message: "not in this test")
  }

  public func getPodCredentials(
    request: Kiam_GetPodCredentialsRequest, context: ServerContext
  ) async throws -> Kiam_Credentials {
    throw RPCError(code: .unimplemented, message: "not in this test")
  }

  public func getHealth(request: Kiam_GetHealthRequest, context: ServerContext) async throws -> Kiam_HealthStatus {
    var status = Kiam_HealthStatus()
    status.message = "ok"
    return status
  }
}
