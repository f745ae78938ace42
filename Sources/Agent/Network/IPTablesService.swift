import KiamShared
import Logging
import Prometheus
import ServiceLifecycle

/// Installs the DNAT rule once the metadata listener is bound (so pods are never sent to a closed
/// port), re-checks it every 30 s and restores it if something removed it, and removes it on exit
/// unless `--no-iptables-remove`.
///
/// Keeping the rule (`--no-iptables-remove`) fails closed: while the agent restarts or is down,
/// pods' metadata traffic still goes to the agent's port and is refused, instead of reaching the
/// node's own metadata service and its instance role (kiam #202, #253).
struct IPTablesService: Service {
  let rules: [IPTablesRule]
  /// `--iptables-backend`.
  var backend: IPTablesBackend.Choice = .auto
  let remove: Bool
  let listener: HTTPServer
  let logger: Logger
  let metrics: KiamMetrics
  var recheckInterval: Duration = .seconds(30)
  /// Told whether the DNAT rule is in place (for `/health?deep`).
  var status = IPTablesStatus()

  /// A failure to manage the rule.
  static func failure(_ rule: IPTablesRule, _ output: CommandRunner.Output) -> KiamError {
    let detail =
      (output.standardError + output.standardOutput).split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
    if output.status == 4 || detail.contains("Permission denied") || detail.contains("you must be root") {
      return KiamError(
        code: .invalidConfiguration,
        message:
          "\(rule.binary): permission denied: the agent needs the NET_ADMIN capability (and /run/xtables.lock mounted) for --iptables (\(detail))"
      )
    }
    return KiamError(code: .internal, message: "\(rule.binary) failed with status \(output.status): \(detail)")
  }

  /// The family of the first redirect (the node's first address, `status.podIP`). Without that
  /// rule the agent serves nobody, so failing to add it stops the agent; the other family's
  /// redirect (a dual-stack `--host`) is logged, reported by `/health?deep` and retried, so a node
  /// that cannot do IPv6 NAT still serves its IPv4 pods.
  private var primaryFamily: IPTablesRule.Family? { rules.first { $0.purpose == .redirect }?.family }

  func run() async throws {
    let binaries = try await programs()
    _ = try await listener.listeningAddress
    try await ensureAll(binaries, initial: true)
    try? await cancelWhenGracefulShutdown {
      while true {
        try await Task.sleep(for: recheckInterval)
        try await ensureAll(binaries, initial: false)
      }
    }
    status.set(.pending)
    if remove {
      for rule in rules {
        if let binary = binaries[rule.family] { await delete(rule, binary: binary) }
      }
    } else {
      logger.info(
        "leaving the iptables rule in place (--no-iptables-remove): pods get no metadata until the agent is back")
    }
  }

  /// One pass over the rules: adds what is missing, then tells ``status`` whether every redirect
  /// (one per family) is in place. On the first pass a failure of the primary redirect is thrown.
  private func ensureAll(_ binaries: [IPTablesRule.Family: String], initial: Bool) async throws {
    var failure: String?
    for rule in rules {
      do {
        try await ensure(rule, binary: try Self.program(for: rule, in: binaries), initial: initial)
      } catch {
        let described = KiamError.describe(error)
        let redirect = rule.purpose == .redirect
        if redirect, initial, rule.family == primaryFamily {
          status.set(.failed(described))
          throw error
        }
        if redirect, failure == nil { failure = described }
        let message: Logger.Message
        if !initial {
          message = "cannot check the iptables rule"
        } else if redirect {
          message =
            "cannot add the \(rule.binary) rule: pods of that family get no metadata until it is in place (retried every --iptables-check-interval)"
        } else {
          // The rate limit is a second line of defence: without it (no hashlimit module) pods
          // are still served, and the log says what is missing.
          message =
            "cannot add the per-pod connection rate rule; one pod reconnecting in a loop can slow the others (--max-new-connections-per-ip=0 turns it off)"
        }
        logger.error(message, metadata: ["error": "\(described)"])
      }
    }
    status.set(failure.map { .failed($0) } ?? .inPlace)
  }

  /// The program for each family's rule: the backend chosen (or detected, see
  /// ``IPTablesBackend``), logged once.
  private func programs() async throws -> [IPTablesRule.Family: String] {
    let decision: IPTablesBackend.Decision?
    switch backend {
    case .forced(let forced):
      decision = .init(backend: forced, reason: "--iptables-backend=\(forced.rawValue)")
    case .auto:
      let installed = IPTablesBackend.allCases.contains { CommandRunner.find($0.binary(.ipv4)) != nil }
      decision =
        installed
        ? await IPTablesBackend.detect(find: { CommandRunner.find($0) }) { path in
          guard let output = try? await CommandRunner.run(path, [], timeout: .seconds(5)), output.status == 0 else {
            return nil
          }
          return output.standardOutput
        } : nil
    }
    var binaries: [IPTablesRule.Family: String] = [:]
    for rule in rules {
      let name = decision.map { $0.backend.binary(rule.family) } ?? rule.binary
      if let path = CommandRunner.find(name) {
        binaries[rule.family] = path
      } else if rule.family == primaryFamily {
        throw Self.notFound(name)
      }
    }
    if let decision {
      logger.info(
        "iptables backend: \(decision.backend.rawValue)",
        metadata: ["reason": "\(decision.reason)", "programs": "\(binaries.values.sorted().joined(separator: ", "))"])
      await removeFromOtherBackends(than: decision.backend)
    } else {
      logger.info(
        "iptables backend: whichever iptables is (neither iptables-nft nor iptables-legacy is installed)",
        metadata: ["programs": "\(binaries.values.sorted().joined(separator: ", "))"])
    }
    return binaries
  }

  private static func notFound(_ name: String) -> KiamError {
    KiamError(
      code: .invalidConfiguration,
      message: "\(name) not found: install it in the agent image or run the agent without --iptables")
  }

  /// The program for `rule`'s family, or the error that it is not installed.
  private static func program(for rule: IPTablesRule, in binaries: [IPTablesRule.Family: String]) throws -> String {
    guard let binary = binaries[rule.family] else { throw notFound(rule.binary) }
    return binary
  }

  /// Deletes our rule from the backends not chosen: an agent of an earlier version (or before
  /// the node's rules moved) may have left it there with `--no-iptables-remove`.
  private func removeFromOtherBackends(than chosen: IPTablesBackend) async {
    for other in IPTablesBackend.allCases where other != chosen {
      for rule in rules {
        guard let path = CommandRunner.find(other.binary(rule.family)),
          let check = try? await CommandRunner.run(path, rule.checkArguments, timeout: .seconds(5)), check.status == 0
        else { continue }
        let deleted = try? await CommandRunner.run(path, rule.deleteArguments, timeout: .seconds(5))
        logger.warning(
          "removed the agent's rule from the \(other.rawValue) tables (the node's rules are in \(chosen.rawValue))",
          metadata: ["status": "\(deleted?.status ?? -1)"])
      }
    }
  }

  private func ensure(_ rule: IPTablesRule, binary: String, initial: Bool) async throws {
    try await ensureOnce(rule, binary: binary, initial: initial)
    // Ours first, then what earlier agents left; checked again, so our rule is never missing
    // for longer than one command even if the listing was misread.
    if initial, await removeStale(rule, binary: binary) { try await ensureOnce(rule, binary: binary, initial: false) }
  }

  private func ensureOnce(_ rule: IPTablesRule, binary: String, initial: Bool) async throws {
    let check = try await CommandRunner.run(binary, rule.checkArguments)
    if check.status == 0 { return }
    if check.status == 4 || check.standardError.contains("Permission denied") { throw Self.failure(rule, check) }
    let insert = try await CommandRunner.run(binary, rule.insertArguments)
    guard insert.status == 0 else { throw Self.failure(rule, insert) }
    if initial {
      logger.info("added iptables rule", metadata: ["rule": "\(rule.specification.joined(separator: " "))"])
    } else {
      metrics.registry.makeCounter(
        descriptor: .init(
          namespace: "kiam", subsystem: "agent", metricName: "iptables_restored", unitName: "total",
          helpText: "Times the DNAT rule was found missing and put back")
      ).increment()
      logger.warning(
        "iptables rule was missing, restored it", metadata: ["rule": "\(rule.specification.joined(separator: " "))"])
    }
  }

  /// Deletes rules of ours with other parameters (see ``IPTablesRule/staleDeleteArguments(in:)``).
  /// - Returns: Whether anything was deleted.
  private func removeStale(_ rule: IPTablesRule, binary: String) async -> Bool {
    guard let listing = try? await CommandRunner.run(binary, rule.listArguments, timeout: .seconds(5)),
      listing.status == 0
    else { return false }
    let stale = rule.staleDeleteArguments(in: listing.standardOutput)
    for arguments in stale {
      let deleted = try? await CommandRunner.run(binary, arguments, timeout: .seconds(5))
      logger.warning(
        "removed a stale kiam agent rule (other flags, left by an earlier agent)",
        metadata: ["rule": "\(arguments.dropFirst(5).joined(separator: " "))", "status": "\(deleted?.status ?? -1)"])
    }
    return !stale.isEmpty
  }

  /// Removes the rule; retries briefly and never crashes (kiam's retry loop panicked, #402).
  private func delete(_ rule: IPTablesRule, binary: String) async {
    for attempt in 1...5 {
      do {
        let output = try await CommandRunner.run(binary, rule.deleteArguments)
        if output.status == 0 {
          logger.info("removed iptables rule")
          return
        }
        // Already gone is fine.
        let check = try await CommandRunner.run(binary, rule.checkArguments)
        if check.status != 0 { return }
        logger.warning(
          "cannot remove iptables rule", metadata: ["attempt": "\(attempt)", "error": "\(output.standardError)"])
      } catch {
        logger.warning("cannot remove iptables rule", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
      }
      try? await Task.sleep(for: .milliseconds(200))
    }
  }
}
