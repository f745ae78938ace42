/// One namespace expression and one pod annotation under kiam v4's default, v4 with
/// `--disable-strict-namespace-regexp`, and kiam v3 (`--permitted-regexp-mode=v3`): the table
/// docs/migrating-from-kiam.md prints.
public struct PermittedCase: Sendable, CustomStringConvertible {
  public let expression: String
  public let annotation: String
  /// Allowed by kiam v4 (the default): the whole resolved ARN.
  public let v4: Bool
  /// Allowed by kiam v4 with `--disable-strict-namespace-regexp`: anywhere in the ARN.
  public let v4Unanchored: Bool
  /// Allowed by kiam v3 (`--permitted-regexp-mode=v3`): anywhere in the annotation.
  public let v3: Bool
  public var description: String { "\(expression) for \(annotation)" }

  public static let base = "arn:aws:iam::123456789012:role/"
  public static let all: [PermittedCase] = [
    .init(expression: "^app-.*$", annotation: "app-web", v4: false, v4Unanchored: false, v3: true),
    .init(expression: "app-.*", annotation: "app-web", v4: false, v4Unanchored: true, v3: true),
    .init(expression: "web", annotation: "app-web", v4: false, v4Unanchored: true, v3: true),
    .init(expression: "app-web", annotation: "app-webhook", v4: false, v4Unanchored: true, v3: true),
    .init(expression: ".*", annotation: "app-web", v4: true, v4Unanchored: true, v3: true),
    .init(
      expression: "arn:aws:iam::123456789012:role/app-.*", annotation: "app-web", v4: true, v4Unanchored: true,
      v3: false),
    .init(
      expression: "arn:aws:iam::123456789012:role/app-.*", annotation: "arn:aws:iam::123456789012:role/app-web",
      v4: true, v4Unanchored: true, v3: true),
    .init(expression: "^app-web$", annotation: "/app-web", v4: false, v4Unanchored: false, v3: false),
    .init(
      expression: "role/cluster-api", annotation: "arn:aws:iam::999999999999:role/cluster-api",
      v4: false, v4Unanchored: true, v3: true),
    .init(
      expression: "^arn:aws:iam::999999999999:role/.*$", annotation: "arn:aws:iam::999999999999:role/cluster-api",
      v4: true, v4Unanchored: true, v3: true),
    .init(expression: "payments|app-.*", annotation: "app-web", v4: false, v4Unanchored: true, v3: true),
  ]
}
