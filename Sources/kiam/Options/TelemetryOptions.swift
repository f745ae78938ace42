import ArgumentParser
import KiamShared

/// `--prometheus-listen-addr`, `--prometheus-sync-interval` (deprecated) and `--pprof-listen-addr`.
struct TelemetryOptions: ParsableArguments {
  @Option(
    name: .customLong("prometheus-listen-addr"),
    help: "Address for the Prometheus /metrics endpoint, e.g. 0.0.0.0:9620 (default: disabled).")
  var prometheusListenAddress: String?

  @Option(name: .customLong("prometheus-sync-interval"), help: .hidden)
  var prometheusSyncInterval: String?

  @Option(name: .customLong("pprof-listen-addr"), help: .hidden)
  var pprofListenAddress: String?

  func metricsAddress() throws -> HostPort? {
    try FlagValues.optionalHostPort(prometheusListenAddress, flag: "prometheus-listen-addr")
  }

  func warnings() throws -> [String] {
    var out: [String] = []
    if let interval = prometheusSyncInterval {
      _ = try FlagValues.duration(interval, flag: "prometheus-sync-interval", default: .seconds(5))
      out.append("--prometheus-sync-interval is deprecated and ignored: metrics are computed when scraped")
    }
    if let pprof = pprofListenAddress, !pprof.isEmpty {
      out.append("--pprof-listen-addr is accepted for compatibility but there is no Go profiler here; ignored")
    }
    return out
  }
}
