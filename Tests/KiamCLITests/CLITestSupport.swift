import ArgumentParser
import Foundation
import KiamAgent
import KiamServer
import KiamShared
import KiamTestSupport
import Testing

@testable import kiam

/// Parses `arguments` as `kiam` would and returns the subcommand.
func parse(_ arguments: [String]) throws -> any ParsableCommandBox {
  let command = try KiamCommand.parseAsRoot(KiamCommand.normalize(arguments))
  switch command {
  case let server as ServerCommand: return ServerBox(command: server)
  case let agent as AgentCommand: return AgentBox(command: agent)
  case let health as HealthCommand: return HealthBox(command: health)
  default: throw TestSupportError("unexpected command \(type(of: command))")
  }
}

protocol ParsableCommandBox {}
struct ServerBox: ParsableCommandBox { let command: ServerCommand }
struct AgentBox: ParsableCommandBox { let command: AgentCommand }
struct HealthBox: ParsableCommandBox { let command: HealthCommand }

func parseServer(_ arguments: [String], context: ResolveContext) throws -> (ServerConfiguration, [String]) {
  guard let box = try parse(arguments) as? ServerBox else { throw TestSupportError("not a server command") }
  return try box.command.resolve(context)
}

func parseAgent(_ arguments: [String], context: ResolveContext) throws -> (AgentConfiguration, [String]) {
  guard let box = try parse(arguments) as? AgentBox else { throw TestSupportError("not an agent command") }
  return try box.command.resolve(context)
}

func parseHealth(_ arguments: [String], context: ResolveContext) throws -> (HealthProbeConfiguration, [String]) {
  guard let box = try parse(arguments) as? HealthBox else { throw TestSupportError("not a health command") }
  return try box.command.resolve(context)
}

/// A file-system root holding empty placeholder files at the given absolute paths.
func fileRoot(with paths: [String]) throws -> TemporaryDirectory {
  let root = try TemporaryDirectory(prefix: "kiam-cli")
  for path in paths { try root.write(String(path.dropFirst()), "placeholder") }
  return root
}
