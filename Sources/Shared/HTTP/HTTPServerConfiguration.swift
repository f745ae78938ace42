/// Limits and timeouts of an ``HTTPServer``.
///
/// The defaults suit the metadata API: requests from SDKs are tiny, so anything large or slow is
/// an attack or a bug and is cut off early.
public struct HTTPServerConfiguration: Sendable {
  /// Address to bind. An empty host binds every IPv4 and IPv6 address.
  public var host: String
  /// Port to bind; 0 picks a free port.
  public var port: Int
  /// Largest accepted request head (request line plus headers), in bytes. Larger heads get 431.
  public var maxHeaderBytes: Int
  /// Largest accepted request body, in bytes. Larger bodies get 413.
  public var maxBodyBytes: Int
  /// A request must arrive completely within this time of its first byte (slowloris guard).
  public var requestReadTimeout: Duration
  /// A keep-alive connection with no traffic for this long is closed.
  public var idleTimeout: Duration
  /// Connections beyond this many are closed as soon as they are accepted.
  public var maxConnections: Int
  /// Connections one source address may hold (``ConnectionTable``): at the cap, the source's
  /// connection that has waited longest for a request makes room; if all are busy, the new one
  /// is refused. Far below ``maxConnections``, so one pod cannot starve the others.
  public var maxConnectionsPerSource: Int
  /// A new connection must send its first byte within this time (a connection that sends
  /// nothing otherwise holds its place for the whole ``idleTimeout``).
  public var firstByteTimeout: Duration
  /// How long a connection refused at the caps is held open, unread, before it is closed (a
  /// client reconnecting at once would otherwise turn refusals into a storm).
  public var refusedHoldTime: Duration

  /// Creates a configuration.
  public init(
    host: String,
    port: Int,
    maxHeaderBytes: Int = 8 * 1024,
    maxBodyBytes: Int = 4 * 1024,
    requestReadTimeout: Duration = .seconds(5),
    idleTimeout: Duration = .seconds(90),
    maxConnections: Int = 4096,
    maxConnectionsPerSource: Int = 64,
    firstByteTimeout: Duration = .seconds(3),
    refusedHoldTime: Duration = .seconds(3)
  ) {
    self.host = host
    self.port = port
    self.maxHeaderBytes = maxHeaderBytes
    self.maxBodyBytes = maxBodyBytes
    self.requestReadTimeout = requestReadTimeout
    self.idleTimeout = idleTimeout
    self.maxConnections = maxConnections
    self.maxConnectionsPerSource = maxConnectionsPerSource
    self.firstByteTimeout = firstByteTimeout
    self.refusedHoldTime = refusedHoldTime
  }
}
