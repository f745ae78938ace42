import KiamShared
import KiamTestSupport
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import Testing

@Suite struct MetricsTests {
  @Test func metricsPageIsValidPrometheusTextWithKiamNames() throws {
    let metrics = KiamMetrics()
    metrics.handlerLatency("credentials").record(.milliseconds(3))
    metrics.responses("credentials", code: 200).increment()
    metrics.success("roleName").increment()
    metrics.credentialFetchErrors("credentials").increment()
    metrics.findRoleErrors("roleName").increment()
    metrics.emptyRole("roleName").increment()
    metrics.credentialEncodeErrors("credentials").increment()
    metrics.proxyRequestsBlocked.increment()
    metrics.stsCacheSize.set(to: 4)
    _ = metrics.tls(.server)
    metrics.grpc(.server, service: "kiam.KiamService", method: "GetHealth").handled(code: "OK").increment()
    let handler = MetricsHandler(metrics: metrics)
    let loop = EmbeddedEventLoop()
    guard case .immediate(let response) = handler.handle(HTTPRequest(method: .GET, uri: "/metrics"), eventLoop: loop)
    else {
      Issue.record("expected an immediate response")
      return
    }
    #expect(response.status == .ok)
    let text = String(buffer: response.body)
    let page = try PrometheusText(text)
    #expect(page.types["kiam_metadata_handler_latency_seconds"] == "histogram")
    #expect(page.value("kiam_metadata_handler_latency_seconds_bucket", ["handler": "credentials", "le": "0.004"]) == 1)
    #expect(page.value("kiam_metadata_handler_latency_seconds_bucket", ["handler": "credentials", "le": "0.002"]) == 0)
    #expect(page.value("kiam_metadata_responses_total", ["handler": "credentials", "code": "200"]) == 1)
    #expect(page.value("kiam_metadata_success_total", ["handler": "roleName"]) == 1)
    #expect(page.value("kiam_metadata_credential_fetch_errors_total", ["handler": "credentials"]) == 1)
    #expect(page.value("kiam_metadata_find_role_errors_total", ["handler": "roleName"]) == 1)
    #expect(page.value("kiam_metadata_empty_role_total", ["handler": "roleName"]) == 1)
    #expect(page.value("kiam_metadata_credential_encode_errors_total", ["handler": "credentials"]) == 1)
    #expect(page.value("kiam_metadata_proxy_requests_blocked_total") == 1)
    #expect(page.value("kiam_sts_cacheSize") == 4)
    for name in [
      "kiam_sts_cache_hit_total", "kiam_sts_cache_miss_total", "kiam_sts_issuing_errors_total",
      "kiam_sts_assumerole_current", "kiam_k8s_dropped_pods_total", "kiam_sts_assumerole_timing_seconds_count",
      "grpc_server_tls_certificate_update_error", "grpc_server_tls_certificate_verify_error",
      "grpc_server_tls_certificate_expiry_seconds",
    ] {
      #expect(page.value(name) != nil, "\(name)")
    }
    #expect(
      page.value(
        "grpc_server_handled_total",
        ["grpc_type": "unary", "grpc_service": "kiam.KiamService", "grpc_method": "GetHealth", "grpc_code": "OK"]) == 1)
    // Process metrics.
    #expect((page.value("process_resident_memory_bytes") ?? 0) > 1_000_000)
    #expect((page.value("process_open_fds") ?? 0) >= 3)
    #expect(page.value("process_cpu_seconds_total") != nil)
    #expect((page.value("process_start_time_seconds") ?? 0) > 1_600_000_000)
    #expect(page.value("process_max_fds") != nil)
    #expect(page.value("process_virtual_memory_bytes") != nil)
  }

  @Test func otherPathsAre404() {
    let handler = MetricsHandler(metrics: KiamMetrics())
    guard
      case .immediate(let response) = handler.handle(
        HTTPRequest(method: .GET, uri: "/"), eventLoop: EmbeddedEventLoop())
    else {
      Issue.record("the metrics handler did not answer at once")
      return
    }
    #expect(response.status == .notFound)
  }
}
