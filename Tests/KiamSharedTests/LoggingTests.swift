import Foundation
import KiamShared
import Logging
import Testing

@Suite struct LoggingTests {
  @Test func jsonLogIsOneObjectPerLine() throws {
    let (sink, lines) = LogSink.memory()
    var logger = Logger(label: "t") { _ in KiamLogHandler(format: .json, level: .info, sink: sink) }
    logger[metadataKey: "component"] = "server"
    logger.info("found role", metadata: ["pod.ip": "10.0.0.1", "role": "app\n\"x\"", "nested": ["a": "1"]])
    logger.debug("hidden")
    logger.warning("careful", metadata: ["msg": "clash"])
    logger.error("failed", error: KiamError(code: .upstream, message: "sts down"))
    let output = lines()
    #expect(output.count == 3)
    for line in output {
      #expect(!line.contains("\n"))
      let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
      #expect(object?["level"] is String)
      #expect(object?["msg"] is String)
      let time = try #require(object?["time"] as? String)
      #expect(RFC3339.parse(time) != nil)
    }
    let first = try #require(try JSONSerialization.jsonObject(with: Data(output[0].utf8)) as? [String: Any])
    #expect(first["level"] as? String == "info")
    #expect(first["msg"] as? String == "found role")
    #expect(first["pod.ip"] as? String == "10.0.0.1")
    #expect(first["role"] as? String == "app\n\"x\"")
    #expect(first["component"] as? String == "server")
    #expect((first["nested"] as? [String: Any])?["a"] as? String == "1")
    let second = try #require(try JSONSerialization.jsonObject(with: Data(output[1].utf8)) as? [String: Any])
    #expect(second["level"] as? String == "warning")
    #expect(second["msg"] as? String == "careful")
    #expect(second["fields.msg"] as? String == "clash")
    let third = try #require(try JSONSerialization.jsonObject(with: Data(output[2].utf8)) as? [String: Any])
    #expect(third["error"] as? String == "sts down")
  }

  @Test func textLogLooksLikeLogrus() {
    let (sink, lines) = LogSink.memory()
    let logger = Logger(label: "t") { _ in KiamLogHandler(format: .text, level: .debug, sink: sink) }
    logger.debug("processed request", metadata: ["status": "200", "path": "/latest/meta-data/", "headers": "a b"])
    let line = lines()[0]
    #expect(line.hasPrefix("time=\""))
    #expect(line.contains(" level=debug msg=\"processed request\" headers=\"a b\" path=/latest/meta-data/ status=200"))
  }

  @Test(arguments: [(Logger.Level.debug, 4), (.info, 3), (.warning, 2), (.error, 1)])
  func levelsFilter(_ level: Logger.Level, _ expected: Int) {
    let (sink, lines) = LogSink.memory()
    let logger = Logger(label: "t") { _ in KiamLogHandler(format: .json, level: level, sink: sink) }
    logger.debug("d")
    logger.info("i")
    logger.warning("w")
    logger.error("e")
    #expect(lines().count == expected)
  }
}
