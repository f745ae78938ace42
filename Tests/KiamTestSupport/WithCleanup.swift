/// Runs `body`, then `cleanup`, also when `body` throws: the awaited form of
/// `defer { cleanup() }` (a `defer` cannot await, and a `Task` started from one may never run when
/// the test process ends first, which left processes' temporary directories behind).
public func withCleanup<T>(
  _ cleanup: () async -> Void,
  _ body: () async throws -> T
) async rethrows -> T {
  let result: T
  do {
    result = try await body()
  } catch {
    await cleanup()
    throw error
  }
  await cleanup()
  return result
}
