/// How log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
  /// logrus-style `time="…" level=info msg="…" key=value` lines (kiam's default).
  case text
  /// One JSON object per line with `level`, `msg`, `time` and the structured fields (`--json-log`).
  case json
}
