import Foundation

/// One raw HTTP/1.1 exchange over a fresh connection (no redirects followed, exact bytes).
public struct HTTPExchange: Sendable {
  public let status: Int
  public let headers: [String: String]
  public let body: String

  public static func send(
    _ method: String = "GET", port: Int, path: String, headers: [String: String] = [:], host: String = "127.0.0.1",
    timeout: Double = 5
  ) throws -> HTTPExchange {
    let socket = try RawSocket(host: host, port: port, receiveTimeout: timeout)
    var request = "\(method) \(path) HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n"
    for (name, value) in headers { request += "\(name): \(value)\r\n" }
    if method == "PUT" || method == "POST" { request += "Content-Length: 0\r\n" }
    request += "\r\n"
    try socket.send(request)
    let raw = socket.receive()
    guard let headEnd = raw.range(of: "\r\n\r\n") else { throw TestSupportError("no response: \(raw)") }
    let head = raw[..<headEnd.lowerBound].split(separator: "\r\n")
    let statusLine = head.first.map(String.init) ?? ""
    let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
    var parsed: [String: String] = [:]
    for line in head.dropFirst() {
      if let colon = line.firstIndex(of: ":") {
        parsed[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
      }
    }
    return HTTPExchange(status: status, headers: parsed, body: String(raw[headEnd.upperBound...]))
  }
}
