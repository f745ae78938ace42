import Logging

/// Where events go without a Kubernetes API (static `--pod-manifests` mode): the log.
struct LogEventSink: EventSink {
  let logger: Logger

  func warning(pod: PodRecord, reason: String, message: String) {
    logger.warning("pod event", metadata: ["pod": "\(pod.key)", "reason": "\(reason)", "message": "\(message)"])
  }
}
