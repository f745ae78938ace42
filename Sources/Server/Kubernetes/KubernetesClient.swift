import AsyncHTTPClient
import Foundation
import KiamShared
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL

/// A small Kubernetes API client: paginated lists, chunked JSON watch streams, and the few
/// writes the server makes (events, token reviews).
public final class KubernetesClient: Sendable {
  let configuration: KubernetesConfiguration
  private let http: HTTPClient
  private let tokens: BearerTokenSource
  private let logger: Logger

  /// - Parameters:
  ///   - watchIdleTimeout: A watch stream silent for this long is considered dead (the API sends
  ///     bookmarks about every minute).
  ///   - systemRoots: Trusted when the configuration names no CA (as client-go does with Go's
  ///     system roots); found on first use when not given.
  public init(
    configuration: KubernetesConfiguration, logger: Logger, watchIdleTimeout: Duration = .seconds(90),
    systemRoots: SystemTrustRoots? = nil
  ) throws {
    var tls = TLSConfiguration.makeClientConfiguration()
    do {
      if let ca = configuration.certificateAuthorityPEM {
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
      } else if !configuration.insecureSkipTLSVerify {
        tls.trustRoots =
          (systemRoots ?? SystemTrustRoots.load(environment: ProcessInfo.processInfo.environment)).trustRoots
      }
      if let cert = configuration.clientCertificatePEM, let key = configuration.clientKeyPEM {
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
      }
    } catch {
      throw KiamError(code: .invalidConfiguration, message: "\(configuration.source): bad TLS material", cause: error)
    }
    if configuration.insecureSkipTLSVerify { tls.certificateVerification = .none }
    // Don't wait 5 s for the API server's close_notify when closing streams we gave up on.
    tls.shutdownTimeout = .milliseconds(500)
    var config = HTTPClient.Configuration(tlsConfiguration: tls)
    config.timeout = .init(connect: .seconds(5), read: .nanoseconds(watchIdleTimeout.nanoseconds))
    config.connectionPool = .init(idleTimeout: .seconds(60))
    self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    self.configuration = configuration
    self.tokens = BearerTokenSource(token: configuration.token, file: configuration.tokenFile)
    self.logger = logger
  }

  /// Closes connections. Call once, after every user has stopped.
  public func shutdown() async throws {
    try await http.shutdown()
  }

  // MARK: Requests

  private func makeRequest(
    method: HTTPMethod, path: String, query: [(String, String)], body: [UInt8]?, contentType: String?
  ) -> HTTPClientRequest {
    var url = configuration.server
    if url.hasSuffix("/") { url.removeLast() }
    url += path
    if !query.isEmpty {
      url += "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
    }
    var request = HTTPClientRequest(url: url)
    request.method = method
    request.headers.add(name: "Accept", value: "application/json")
    request.headers.add(name: "User-Agent", value: "kiam-server/\(KiamVersion.current)")
    if let token = tokens.current() { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    if let body {
      request.body = .bytes(ByteBuffer(bytes: body))
      request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
    }
    return request
  }

  /// Sends a request; on 401 re-reads the token once and retries.
  private func send(
    method: HTTPMethod, path: String, query: [(String, String)] = [], body: [UInt8]? = nil,
    contentType: String? = nil, verb: String, resource: String, timeout: Duration
  ) async throws -> HTTPClientResponse {
    var attempt = 0
    while true {
      attempt += 1
      let request = makeRequest(method: method, path: path, query: query, body: body, contentType: contentType)
      let response: HTTPClientResponse
      do {
        response = try await http.execute(request, timeout: .nanoseconds(timeout.nanoseconds))
      } catch {
        throw KubernetesAPIError(statusCode: 0, verb: verb, resource: resource, message: KiamError.describe(error))
      }
      if response.status == .unauthorized, attempt == 1, tokens.isConfigured {
        _ = try? await response.body.collect(upTo: 1 << 20)
        tokens.invalidate()
        continue
      }
      guard (200..<300).contains(Int(response.status.code)) else {
        let bytes = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
        let status = try? JSONDecoder().decode(APIStatus.self, from: bytes)
        throw KubernetesAPIError(
          statusCode: Int(response.status.code), verb: verb, resource: resource,
          message: status?.message ?? response.status.reasonPhrase)
      }
      return response
    }
  }

  /// One page of a list.
  func list<Item: Decodable & Sendable>(
    _ path: String, resource: String, limit: Int, continueToken: String?, as: Item.Type = Item.self
  ) async throws -> ObjectList<Item> {
    var query = [("limit", String(limit))]
    if let continueToken { query.append(("continue", continueToken)) }
    let response = try await send(
      method: .GET, path: path, query: query, verb: "list", resource: resource, timeout: .seconds(60))
    let bytes: ByteBuffer
    do {
      bytes = try await response.body.collect(upTo: 512 << 20)
    } catch {
      throw KubernetesAPIError(
        statusCode: 0, verb: "list", resource: resource, message: "reading response: \(KiamError.describe(error))")
    }
    do {
      return try JSONDecoder().decode(ObjectList<Item>.self, from: bytes)
    } catch {
      throw KubernetesAPIError(
        statusCode: Int(response.status.code), verb: "list", resource: resource,
        message: "undecodable response: \(KiamError.describe(error))")
    }
  }

  /// Streams watch events to `handle` until the server ends the stream (after `timeoutSeconds`)
  /// or it fails. Lines split across chunks are reassembled.
  func watch<Item: Decodable & Sendable>(
    _ path: String, resource: String, resourceVersion: String, timeoutSeconds: Int, as: Item.Type = Item.self,
    handle: (WatchEvent<Item>) async throws -> Void
  ) async throws {
    let query = [
      ("watch", "true"), ("resourceVersion", resourceVersion), ("allowWatchBookmarks", "true"),
      ("timeoutSeconds", String(timeoutSeconds)),
    ]
    let response = try await send(
      method: .GET, path: path, query: query, verb: "watch", resource: resource, timeout: .seconds(30))
    let decoder = JSONDecoder()
    var lines = response.body.splitLines(maximumBufferSize: 64 << 20).makeAsyncIterator()
    while true {
      let next: ByteBuffer?
      do {
        next = try await lines.next()
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        if Task.isCancelled { throw CancellationError() }
        throw KubernetesAPIError(
          statusCode: 0, verb: "watch", resource: resource, message: "stream broke: \(KiamError.describe(error))")
      }
      guard let line = next else { return }
      let event: WatchEvent<Item>
      do {
        event = try decoder.decode(WatchEvent<Item>.self, from: line)
      } catch {
        throw KubernetesAPIError(
          statusCode: 200, verb: "watch", resource: resource, message: "undecodable event: \(KiamError.describe(error))"
        )
      }
      // Errors from the handler (e.g. 410 Gone) propagate unchanged.
      try await handle(event)
    }
  }

  /// POSTs `body` as JSON and decodes the answer.
  func post<Body: Encodable, Answer: Decodable>(
    _ path: String, body: Body, resource: String, as: Answer.Type = Answer.self
  ) async throws -> Answer {
    let encoded = Array(try JSONEncoder().encode(body))
    let response = try await send(
      method: .POST, path: path, body: encoded, verb: "create", resource: resource, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 8 << 20)
    return try JSONDecoder().decode(Answer.self, from: bytes)
  }

  /// PATCHes with a JSON merge patch.
  func mergePatch<Body: Encodable>(_ path: String, body: Body, resource: String) async throws {
    let encoded = Array(try JSONEncoder().encode(body))
    let response = try await send(
      method: .PATCH, path: path, body: encoded, contentType: "application/merge-patch+json", verb: "patch",
      resource: resource, timeout: .seconds(10))
    _ = try await response.body.collect(upTo: 8 << 20)
  }

  private static func escape(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
  }
}
