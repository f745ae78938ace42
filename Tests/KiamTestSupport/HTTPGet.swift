import Foundation

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// Minimal HTTP GET for tests (plain http on loopback).
public enum HTTPGet {
  public static func text(_ url: String) async throws -> String {
    try await fetch(url).body
  }

  public static func fetch(_ url: String, headers: [String: String] = [:]) async throws -> (status: Int, body: String) {
    var request = URLRequest(url: URL(string: url)!)
    request.timeoutInterval = 10
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
  }
}
