import AsyncHTTPClient
import KiamShared
import NIOCore
import NIOHTTP1
import Synchronization

/// A client of the EC2 instance metadata service with IMDSv2 session tokens (falling back to v1
/// when the token endpoint answers 403/404/405, as the SDKs do).
final class InstanceMetadataClient: Sendable {
  /// e.g. `http://169.254.169.254` (or `AWS_EC2_METADATA_SERVICE_ENDPOINT`).
  let endpoint: String
  private let http: HTTPClient
  private let token = Mutex<(value: String?, until: ContinuousClock.Instant, v1: Bool)?>(nil)

  init(endpoint: String, http: HTTPClient) {
    var endpoint = endpoint
    while endpoint.hasSuffix("/") { endpoint.removeLast() }
    self.endpoint = endpoint
    self.http = http
  }

  struct Failure: Error, CustomStringConvertible {
    let url: String
    let detail: String
    var description: String { "\(url): \(detail)" }
  }

  /// GETs `path` (e.g. `/latest/meta-data/iam/info`) and returns the body.
  func get(_ path: String) async throws -> String {
    let url = endpoint + path
    for attempt in 0..<2 {
      var request = HTTPClientRequest(url: url)
      if let token = try await sessionToken(forceNew: attempt > 0) {
        request.headers.add(name: "X-aws-ec2-metadata-token", value: token)
      }
      let response: HTTPClientResponse
      let body: ByteBuffer
      do {
        response = try await http.execute(request, timeout: .seconds(2))
        body = try await response.body.collect(upTo: 1 << 20)
      } catch {
        throw Failure(url: url, detail: KiamError.describe(error))
      }
      if response.status == .unauthorized && attempt == 0 { continue }  // token expired: get a new one
      guard response.status == .ok else {
        throw Failure(url: url, detail: "HTTP \(response.status.code) \(String(buffer: body).prefix(200))")
      }
      return String(buffer: body)
    }
    throw Failure(url: url, detail: "unauthorized")
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
      response = try await http.execute(request, timeout: .seconds(2))
      body = try await response.body.collect(upTo: 64 * 1024)
    } catch {
      throw Failure(url: url, detail: KiamError.describe(error))
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
