public import AsyncHTTPClient
public import NIOCore
public import NIOHTTP1
import Synchronization

/// A client of the EC2 instance metadata service with IMDSv2 session tokens, falling back to v1
/// when the token endpoint answers 403/404/405 (as the AWS SDKs do). The server uses it for
/// `--role-base-arn-autodetect` and instance credentials; the agent for `/health` and for the
/// allow-listed paths it passes through (with its own token, never the pod's).
public final class InstanceMetadataClient: Sendable {
  /// e.g. `http://169.254.169.254`.
  public let endpoint: String
  private let http: HTTPClient
  private let token = Mutex<(value: String?, until: ContinuousClock.Instant, v1: Bool)?>(nil)
  private let timeout: Duration

  public init(endpoint: String, http: HTTPClient, timeout: Duration = .seconds(2)) {
    var endpoint = endpoint
    while endpoint.hasSuffix("/") { endpoint.removeLast() }
    self.endpoint = endpoint
    self.http = http
    self.timeout = timeout
  }

  /// A failed metadata request, naming the URL.
  public struct Failure: Error, CustomStringConvertible, Sendable {
    public let url: String
    public let detail: String
    public var description: String { "\(url): \(detail)" }
  }

  /// An upstream answer.
  public struct Answer: Sendable {
    public let status: HTTPResponseStatus
    public let headers: HTTPHeaders
    public let body: ByteBuffer
  }

  /// GETs `path` (e.g. `/latest/meta-data/iam/info`) and returns the body of a 200 answer.
  public func get(_ path: String) async throws -> String {
    let answer = try await send(method: .GET, pathAndQuery: path, headers: [:], body: nil)
    guard answer.status == .ok else {
      throw Failure(
        url: endpoint + path, detail: "HTTP \(answer.status.code) \(String(buffer: answer.body).prefix(200))")
    }
    return String(buffer: answer.body)
  }

  /// Sends a request with a session token of our own (retrying once with a new token on 401).
  public func send(method: HTTPMethod, pathAndQuery: String, headers: HTTPHeaders, body: ByteBuffer?) async throws
    -> Answer
  {
    let url = endpoint + pathAndQuery
    var last: Answer?
    for attempt in 0..<2 {
      var request = HTTPClientRequest(url: url)
      request.method = method
      request.headers = headers
      request.headers.remove(name: "X-aws-ec2-metadata-token")
      if let token = try await sessionToken(forceNew: attempt > 0) {
        request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
      }
      if let body { request.body = .bytes(body) }
      do {
        let response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
        let bytes = try await response.body.collect(upTo: 4 << 20)
        let answer = Answer(status: response.status, headers: response.headers, body: bytes)
        if response.status == .unauthorized && attempt == 0 {
          last = answer
          continue  // our token expired: get a new one
        }
        return answer
      } catch {
        throw Failure(url: url, detail: String(describing: error))
      }
    }
    return last!
  }

  private func sessionToken(forceNew: Bool) async throws -> String? {
    if !forceNew, let current = token.withLock({ $0 }), current.until > ContinuousClock.now {
      return current.v1 ? nil : current.value
    }
    var request = HTTPClientRequest(url: endpoint + "/latest/api/token")
    request.method = .PUT
    request.headers.add(name: "X-aws-ec2-metadata-token-ttl-seconds", value: "21600")
    let url = endpoint + "/latest/api/token"
    let response: HTTPClientResponse
    let body: ByteBuffer
    do {
      response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
      body = try await response.body.collect(upTo: 64 * 1024)
    } catch {
      throw Failure(url: url, detail: String(describing: error))
    }
    switch response.status.code {
    case 200:
      let value = String(buffer: body)
      token.withLock { $0 = (value, ContinuousClock.now + .seconds(21600 - 60), false) }
      return value
    case 403, 404, 405:
      // No IMDSv2 here: use v1 for a while.
      token.withLock { $0 = (nil, ContinuousClock.now + .seconds(300), true) }
      return nil
    default:
      throw Failure(url: url, detail: "HTTP \(response.status.code)")
    }
  }
}
