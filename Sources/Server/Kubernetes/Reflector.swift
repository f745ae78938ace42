import KiamShared
import Logging
import ServiceLifecycle

/// Keeps a local store in step with one resource of the API: list (paginated), then watch from
/// the list's resourceVersion with bookmarks.
///
/// - A watch that ends normally (its `timeoutSeconds`) resumes from the last resourceVersion.
/// - A dropped stream or failed request resumes from the last resourceVersion after a jittered
///   backoff; nothing is lost because the API replays from there.
/// - 410 Gone (as a status or an `ERROR` event) means the resourceVersion is too old: list again.
/// - 401/403 are logged with the RBAC verb that is missing, and retried with backoff so the
///   server recovers by itself once RBAC is fixed.
struct Reflector<Object: Decodable & Sendable>: Service {
  /// Receives the data.
  struct Store: Sendable {
    /// A complete list replaces everything (missing objects were deleted meanwhile).
    let replace: @Sendable ([Object]) -> Void
    let added: @Sendable (Object) -> Void
    let modified: @Sendable (Object) -> Void
    let deleted: @Sendable (Object) -> Void
    let resourceVersion: @Sendable (Object) -> String?
  }

  let client: KubernetesClient
  /// e.g. `/api/v1/pods`.
  let path: String
  /// e.g. `pods`, for messages and RBAC hints.
  let resource: String
  let store: Store
  let logger: Logger
  var pageSize = 500
  var watchTimeoutSeconds = 300
  var backoff = Backoff(initial: .milliseconds(200), maximum: .seconds(30))
  var metrics: ReflectorMetrics?

  func run() async throws {
    try? await cancelWhenGracefulShutdown {
      try await loop()
    }
  }

  private struct Gone: Error {}

  private func loop() async throws {
    var resourceVersion: String?
    var backoff = self.backoff
    while !Task.isCancelled {
      do {
        if resourceVersion == nil {
          resourceVersion = try await listAll()
          metrics?.relisted(resource)
          backoff.reset()
        }
        var received = false
        try await client.watch(
          path, resource: resource, resourceVersion: resourceVersion ?? "0", timeoutSeconds: watchTimeoutSeconds,
          as: Object.self
        ) { event in
          received = true
          switch event {
          case .added(let object):
            store.added(object)
            resourceVersion = store.resourceVersion(object) ?? resourceVersion
          case .modified(let object):
            store.modified(object)
            resourceVersion = store.resourceVersion(object) ?? resourceVersion
          case .deleted(let object):
            store.deleted(object)
            resourceVersion = store.resourceVersion(object) ?? resourceVersion
          case .bookmark(let version):
            if !version.isEmpty { resourceVersion = version }
          case .error(let status):
            if status.code == 410 { throw Gone() }
            throw KubernetesAPIError(
              statusCode: status.code ?? 500, verb: "watch", resource: resource,
              message: status.message ?? status.reason ?? "watch error")
          }
        }
        metrics?.watchEnded(resource)
        if received { backoff.reset() } else { try await Task.sleep(for: .milliseconds(100)) }
      } catch is Gone {
        logger.info("watch resourceVersion too old, listing again", metadata: ["resource": "\(resource)"])
        resourceVersion = nil
      } catch let error as KubernetesAPIError where error.isGone {
        logger.info("resourceVersion too old, listing again", metadata: ["resource": "\(resource)"])
        resourceVersion = nil
      } catch is CancellationError {
        return
      } catch {
        if Task.isCancelled { return }
        metrics?.failed(resource)
        let delay = backoff.next()
        logger.warning(
          "kubernetes watch failed, retrying",
          metadata: [
            "resource": "\(resource)", "error": "\(KiamError.describe(error))",
            "retry_in": "\(GoDuration.format(delay))",
          ])
        try await Task.sleep(for: delay)
      }
    }
  }

  /// Lists every page; returns the list's resourceVersion.
  private func listAll() async throws -> String {
    var items: [Object] = []
    var continueToken: String?
    var version: String?
    repeat {
      let page: ObjectList<Object>
      do {
        page = try await client.list(
          path, resource: resource, limit: pageSize, continueToken: continueToken, as: Object.self)
      } catch let error as KubernetesAPIError where error.isGone && continueToken != nil {
        // The continue token expired mid-list: start over.
        items.removeAll()
        continueToken = nil
        version = nil
        continue
      }
      items.append(contentsOf: page.items)
      if version == nil { version = page.metadata.resourceVersion }
      continueToken = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
    } while continueToken != nil
    store.replace(items)
    logger.info("listed", metadata: ["resource": "\(resource)", "count": "\(items.count)"])
    return version ?? "0"
  }
}
