import GRPCCore
import KiamShared

/// The `kiam.KiamService` gRPC service.
struct KiamGRPCService: Kiam_KiamService.SimpleServiceProtocol {
  func getPodRole(request: Kiam_GetPodRoleRequest, context: ServerContext) async throws -> Kiam_Role {
    throw RPCError(code: .unavailable, message: "server is not ready")
  }

  func getPodCredentials(
    request: Kiam_GetPodCredentialsRequest, context: ServerContext
  ) async throws -> Kiam_Credentials {
    throw RPCError(code: .unavailable, message: "server is not ready")
  }

  func getHealth(request: Kiam_GetHealthRequest, context: ServerContext) async throws -> Kiam_HealthStatus {
    var status = Kiam_HealthStatus()
    status.message = "ok"
    return status
  }
}
