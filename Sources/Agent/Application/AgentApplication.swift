public import KiamShared
public import Logging

/// Assembles and runs `kiam agent`.
public struct AgentApplication: Sendable {
  private let configuration: AgentConfiguration
  private let logger: Logger

  public init(configuration: AgentConfiguration, logger: Logger) {
    self.configuration = configuration
    self.logger = logger
  }

  public func run() async throws {
    throw KiamError(code: .internal, message: "the agent is not implemented yet")
  }
}
