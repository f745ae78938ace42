#if canImport(Glibc)
  import Glibc
#endif

/// Reads the node's IPv4 neighbor (ARP) table, `/proc/net/arp`, to tell pods apart locally:
/// a pod's IP reaches the node from the pod's own MAC address on its own interface, and a new
/// pod that reuses the IP brings a new MAC (and usually a new veth). Nil where the table has no
/// entry (loopback callers, IPv6, layer-3 CNIs): then identity is confirmed with the server.
struct NeighborTable: Sendable {
  let path: String

  init(path: String = "/proc/net/arp") {
    self.path = path
  }

  /// `"<mac>@<device>"` for `ip`, or nil.
  func link(for ip: String) -> String? {
    guard !ip.contains(":"), let text = Self.readFile(path) else { return nil }
    // IP address  HW type  Flags  HW address  Mask  Device
    for line in text.split(separator: "\n").dropFirst() {
      let fields = line.split(separator: " ", omittingEmptySubsequences: true)
      guard fields.count >= 6, fields[0] == ip else { continue }
      // Flags 0x0 is an incomplete entry.
      guard fields[2] != "0x0", fields[3] != "00:00:00:00:00:00" else { return nil }
      return "\(fields[3])@\(fields[5])"
    }
    return nil
  }

  private static func readFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 16 * 1024)
    while true {
      let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n <= 0 { break }
      bytes.append(contentsOf: buffer[0..<n])
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
