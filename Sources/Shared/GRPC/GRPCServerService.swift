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
public struct GRPCClientService<Transport: ClientTransport>: Service {
  private let client: GRPCClient<Transport>

  public init(client: GRPCClient<Transport>) {
    self.client = client
  }

  public func run() async throws {
    try await withGracefulShutdownHandler {
      try await client.runConnections()
    } onGracefulShutdown: {
      client.beginGracefulShutdown()
    }
  }
}
