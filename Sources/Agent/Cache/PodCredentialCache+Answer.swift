import GRPCCore
import KiamShared

extension PodCredentialCache {
  /// What a pod's request asks for.
  enum Question: Sendable, Equatable {
    /// `/iam/security-credentials/`: the pod's role name.
    case roleName
    /// `/iam/security-credentials/<role>`: credentials for that role.
    case credentials(role: String)
  }

  /// The answer to one request; ``MetadataHandler`` turns it into a response.
  struct Answer: Sendable {
    enum Outcome: Sendable {
      /// The pod's identity (for ``Question/roleName``; its role may be empty).
      case identity(PodIdentity)
      case credentials(CachedCredentials)
      /// The pod has no role annotation (for ``Question/credentials(role:)``).
      case emptyRole
      /// Credentials for a role that is not the pod's.
      case notThePodsRole
      /// No answer; nothing known from before could stand in.
      case failed(ServerCallError)
    }

    /// How an answer was given while no server answered.
    enum Outage: Sendable {
      /// The servers were already known to be unreachable: answered from memory at once.
      case answeredAtOnce
      /// This request's call failed with `error`; the same pod's last answer stood in.
      case afterFailure(ServerCallError)
    }

    var outcome: Outcome
    /// The pod the server confirmed for this caller during this request: the connection keeps it
    /// (``PodIdentity/connectionKey``), so its next requests need no confirmation.
    var checkedPod: PodIdentity? = nil
    var outage: Outage? = nil
  }

  /// The one asynchronous way in: everything a request needs that the warm path
  /// (``warmCredentials(ip:role:wallNow:connectionPod:memo:)``) could not answer, in this order:
  ///
  /// 1. no server reachable (``PodCredentialSource/isUnreachable``): the same pod's last answer at once;
  /// 2. the caller's identity: trusted from memory (``trustedIdentity(ip:connectionPod:)``), else
  ///    asked (`GetPodRole`, one lookup per IP at a time, retried within `deadline` while the
  ///    server has not seen the pod yet or still names the previous pod of a reused IP);
  /// 3. for credentials: the pod's role must be the one asked for; credentials held for this same
  ///    pod are served, else fetched (`GetPodCredentials`) and stored;
  /// 4. a server that does not answer: the same pod's last identity or still-valid credentials.
  /// - Parameter connectionPod: The pod checked earlier on the request's connection, if any.
  func answer(_ question: Question, ip: String, connectionPod: String?, deadline: ContinuousClock.Instant) async
    -> Answer
  {
    switch question {
    case .roleName:
      return await roleName(ip: ip, deadline: deadline)
    case .credentials(let role):
      return await credentials(ip: ip, role: role, connectionPod: connectionPod, deadline: deadline)
    }
  }

  private func roleName(ip: String, deadline: ContinuousClock.Instant) async -> Answer {
    if source.isUnreachable, let known = outageIdentity(ip: ip) {
      return Answer(outcome: .identity(known), outage: .answeredAtOnce)
    }
    switch await lookupIdentity(ip: ip, deadline: deadline) {
    case .success(let identity):
      return Answer(outcome: .identity(identity), checkedPod: identity)
    case .failure(let error):
      if error.isUnavailable, let known = outageIdentity(ip: ip) {
        return Answer(outcome: .identity(known), outage: .afterFailure(error))
      }
      return Answer(outcome: .failed(error))
    }
  }

  private func credentials(
    ip: String, role: String, connectionPod: String?, deadline: ContinuousClock.Instant
  ) async -> Answer {
    let wallNow = clock.nowPrecise()
    func failure(_ error: ServerCallError, checked: PodIdentity?) -> Answer {
      if error.isUnavailable, let cached = outageCredentials(ip: ip, role: role, wallNow: wallNow) {
        return Answer(outcome: .credentials(cached), checkedPod: checked, outage: .afterFailure(error))
      }
      return Answer(outcome: .failed(error), checkedPod: checked)
    }
    if source.isUnreachable, let known = outageIdentity(ip: ip), Self.sameRole(role, known.role),
      let cached = outageCredentials(ip: ip, role: role, wallNow: wallNow)
    {
      return Answer(outcome: .credentials(cached), outage: .answeredAtOnce)
    }
    let identity: PodIdentity
    var checked: PodIdentity?
    var outage: Answer.Outage?
    if let trusted = trustedIdentity(ip: ip, connectionPod: connectionPod) {
      identity = trusted
    } else {
      switch await lookupIdentity(ip: ip, deadline: deadline) {
      case .success(let found):
        identity = found
        checked = found
      case .failure(let error):
        guard error.isUnavailable, let known = outageIdentity(ip: ip) else { return failure(error, checked: nil) }
        identity = known
        outage = .afterFailure(error)
      }
    }
    guard !identity.role.isEmpty else { return Answer(outcome: .emptyRole, checkedPod: checked) }
    // Not the pod's role: the handler answers 404, so SDKs list the role again.
    guard Self.sameRole(role, identity.role) else { return Answer(outcome: .notThePodsRole, checkedPod: checked) }
    // The pod is confirmed: credentials held for this same pod need no second call (new
    // connections from callers without a neighbour entry come here).
    if let held = heldCredentials(ip: ip, role: role, wallNow: clock.nowPrecise(), pod: identity.connectionKey) {
      return Answer(outcome: .credentials(held), checkedPod: checked, outage: outage)
    }
    do {
      let issued = try await source.podCredentials(ip: ip, role: role, timeout: deadline - .now)
      let cached = CachedCredentials(issued, now: clock.nowPrecise())
      store(ip: ip, role: role, credentials: cached, podUID: issued.podUID)
      return Answer(outcome: .credentials(cached), checkedPod: checked)
    } catch {
      if error.isPodNotFound { forget(ip: ip) }
      return failure(error, checked: checked)
    }
  }

  /// Fetches `role`'s credentials for `ip` again and stores them (background refresh); a pod the
  /// server no longer knows is forgotten.
  func refresh(ip: String, role: String, timeout: Duration) async throws(ServerCallError) {
    do {
      let issued = try await source.podCredentials(ip: ip, role: role, timeout: timeout)
      store(ip: ip, role: role, credentials: CachedCredentials(issued, now: clock.nowPrecise()), podUID: issued.podUID)
    } catch {
      if error.isPodNotFound { forget(ip: ip) }
      throw error
    }
  }

  // MARK: Asking who the caller is

  /// Asks the server who `ip` is before `deadline` (one lookup per IP at a time).
  private func lookupIdentity(ip: String, deadline: ContinuousClock.Instant) async -> Result<
    PodIdentity, ServerCallError
  > {
    await lookups.lookup(ip: ip) { await self.askIdentity(ip: ip, deadline: deadline) }
  }

  private func askIdentity(ip: String, deadline: ContinuousClock.Instant) async -> Result<PodIdentity, ServerCallError>
  {
    var last = ServerCallError(code: .deadlineExceeded, message: "context deadline exceeded")
    attempts: while deadline - .now > .milliseconds(20) {
      let attempt = ContinuousClock.now
      do {
        let identity = try await source.podRole(ip: ip, timeout: deadline - .now)
        switch confirm(ip: ip, identity: identity) {
        case .accepted:
          return .success(identity)
        case .conflict:
          // A new pod behind this IP that the server does not know yet: wait for it, within budget.
          last = ServerCallError(code: .unknown, message: Self.podChanged)
          guard deadline - .now > .milliseconds(150) else { break attempts }
          try? await Task.sleep(for: .milliseconds(100))
          continue attempts
        }
      } catch {
        last = error
        // A server that answers "not found" at once has not waited for the pod (Go kiam does
        // not): ask again shortly, within budget. Ours already waited, so its answer stands.
        let answeredAtOnce = ContinuousClock.now - attempt < .milliseconds(100)
        guard error.isPodNotFound, answeredAtOnce, deadline - .now > .milliseconds(150) else { break attempts }
        try? await Task.sleep(for: .milliseconds(50))
      }
    }
    if last.isPodNotFound { forget(ip: ip) }
    return .failure(last)
  }

  /// Why a reused IP gets no answer while the server still names the previous pod.
  static let podChanged = "the pod behind this IP changed and the server does not know the new pod yet"

  /// `myrole`, `/myrole` and `myrole/` name the same role.
  static func sameRole(_ a: String, _ b: String) -> Bool {
    func normal(_ s: String) -> Substring {
      var t = s[...]
      if t.hasPrefix("/") { t = t.dropFirst() }
      if t.hasSuffix("/") { t = t.dropLast() }
      return t
    }
    return normal(a) == normal(b)
  }
}
