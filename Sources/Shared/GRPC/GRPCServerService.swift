public import GRPCCore
public import ServiceLifecycle

/// Runs a `GRPCServer` as a `Service`: on graceful shutdown it stops accepting RPCs, lets the
/// in-flight ones finish, then returns.
public struct GRPCServerService<Transport: ServerTransport>: Service {
  private let server: GRPCServer<Transport>

  public init(server: GRPCServer<Transport>) {
    self.server = server
  }

  public func run() async throws {
    try await withGracefulShutdownHandler {
      try await server.serve()
    } onGracefulShutdown: {
      server.beginGracefulShutdown()
    }
  }
}

/// Runs a `GRPCClient`'s connections as a `Service`; in-flight RPCs finish on graceful shutdown.
///
/// The drain is bounded by `drainTimeout`: grpc-swift's channel never finishes closing when its
/// name never resolved (no load balancer was ever made, and its event stream is left open), which
/// would otherwise hang SIGTERM forever, e.g. an agent started while cluster DNS was down.
public struct GRPCClientService<Transport: ClientTransport>: Service {
  private let client: GRPCClient<Transport>
  private let drainTimeout: Duration

  public init(client: GRPCClient<Transport>, drainTimeout: Duration = .seconds(5)) {
    self.client = client
    self.drainTimeout = drainTimeout
  }

  public func run() async throws {
    let client = self.client
    let drainTimeout = self.drainTimeout
    try await withThrowingTaskGroup(of: Void.self) { group in
      group.addTask {
        try await withGracefulShutdownHandler {
          try await client.runConnections()
        } onGracefulShutdown: {
          client.beginGracefulShutdown()
        }
      }
      group.addTask {
        // Returns (ending the connections) once shutdown began and the drain took too long;
        // cancelled as soon as the connections finish on their own.
        try await gracefulShutdown()
        try await Task.sleep(for: drainTimeout)
      }
      _ = try await group.next()
      group.cancelAll()
    }
  }
}
