import KiamShared
import KiamTestSupport
import Testing

@testable import KiamServer

/// kiam's pkg/aws/sts/arn_resolver_test.go and pkg/server/policy_test.go, plus the fixes.
@Suite struct ARNResolverTests {
  let resolver = RoleARNResolver(baseARN: "arn:aws:iam::account-id:role/")

  @Test func resolvedRoleEquality() throws {
    #expect(try resolver.resolve("myrole") == resolver.resolve("myrole"))
    #expect(try resolver.resolve("myrole") != resolver.resolve("other"))
  }

  @Test func addsPrefix() throws {
    let role = try resolver.resolve("myrole")
    #expect(role.arn == "arn:aws:iam::account-id:role/myrole")
    #expect(role.name == "myrole")
  }

  @Test func errorForEmptyRole() {
    #expect(throws: KiamError.self) { try resolver.resolve("") }
    do { _ = try resolver.resolve("") } catch let e as KiamError { #expect(e.message == "role can't be empty") } catch {
    }
  }

  @Test func leadingSlashAndPaths() throws {
    #expect(try resolver.resolve("/myrole") == ResolvedRole(name: "myrole", arn: "arn:aws:iam::account-id:role/myrole"))
    #expect(
      try resolver.resolve("kiam/myrole")
        == ResolvedRole(name: "kiam/myrole", arn: "arn:aws:iam::account-id:role/kiam/myrole"))
    #expect(
      try resolver.resolve("/kiam/myrole")
        == ResolvedRole(name: "kiam/myrole", arn: "arn:aws:iam::account-id:role/kiam/myrole"))
  }

  @Test func absoluteARN() throws {
    let role = try resolver.resolve("arn:aws:iam::some-other-account:role/path-prefix/another-role")
    #expect(role.arn == "arn:aws:iam::some-other-account:role/path-prefix/another-role")
    #expect(role.name == "path-prefix/another-role")
    #expect(role.accountID == "some-other-account")
  }

  /// IAM's limits (name 64, path 512 with its slashes, ARN 2,048): at the limit resolves, one
  /// past is refused with the limit named, before any expression or STS sees it.
  @Test func roleLengthsAreCappedAtIAMsLimits() throws {
    let name64 = String(repeating: "n", count: 64)
    #expect(try resolver.resolve(name64).name == name64)
    let path510 = String(repeating: "p", count: 510)
    #expect(try resolver.resolve("\(path510)/x").name.count == 512)
    for (role, limit) in [
      (name64 + "n", "a role name has at most 64 characters, this one 65"),
      ("\(path510)p/x", "a role path has at most 512 characters, this one 513"),
      (String(repeating: "a", count: 3000), "a role ARN has at most 2048 characters, this one 3029"),
      ("arn:aws:iam::1:role/" + String(repeating: "p/", count: 1100) + "x", "a role ARN has at most 2048 characters"),
    ] {
      let error = #expect(throws: KiamError.self) { try resolver.resolve(role) }
      #expect(error?.message.contains(limit) == true, "\(error?.message ?? "")")
      #expect(error?.code == .invalidInput)
    }
  }

  @Test func baseFromInstanceProfile() throws {
    #expect(
      try RoleARNResolver.baseARN(
        fromInstanceProfileARN: "arn:aws:iam::account-id:instance-profile/instance-profile-name")
        == "arn:aws:iam::account-id:role/")
    #expect(
      try RoleARNResolver.baseARN(fromInstanceProfileARN: "arn:aws:iam::account-id:instance-profile/some/path/name")
        == "arn:aws:iam::account-id:role/")
    #expect(
      try RoleARNResolver.baseARN(fromInstanceProfileARN: "arn:aws-cn:iam::123:instance-profile/x")
        == "arn:aws-cn:iam::123:role/")
    #expect(throws: KiamError.self) { try RoleARNResolver.baseARN(fromInstanceProfileARN: "garbage") }
  }
}

@Suite struct PolicyTests {
  func pod(role: String, namespace: String = "red") -> PodRecord {
    PodRecord(namespace: namespace, name: "app", ips: ["10.0.0.1"], role: role)
  }

  func namespace(_ permitted: String?, strict: Bool = true) -> NamespaceRecord {
    NamespaceRecord(name: "red", permitted: permitted, strict: strict)
  }

  @Test func requestedRolePolicy() throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: ""))
    for annotation in ["myrole", "/myrole"] {
      let ns = namespace(".*")
      #expect(
        try policy.evaluate(pod: pod(role: annotation), requestedRole: "myrole", namespace: ns)
          == .allowed(ResolvedRole(name: "myrole", arn: "myrole")))
      #expect(
        try policy.evaluate(pod: pod(role: annotation), requestedRole: "/myrole", namespace: ns)
          == .allowed(ResolvedRole(name: "myrole", arn: "myrole")))
      #expect(
        try policy.evaluate(pod: pod(role: annotation), requestedRole: "wrongrole", namespace: ns)
          == .forbidden(explanation: "requested 'wrongrole' but annotated with 'myrole', forbidden"))
      if case .allowed = try policy.evaluate(pod: pod(role: annotation), requestedRole: "/wrongrole", namespace: ns) {
        Issue.record("/wrongrole allowed")
      }
    }
  }

  @Test func namespacePolicy() throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: ""))
    for annotation in ["red_role", "/red_role"] {
      let ns = namespace("^red.*$|^.red.*$")
      #expect(try policy.evaluate(pod: pod(role: annotation), requestedRole: "red_role", namespace: ns).isAllowed)
      #expect(try policy.evaluate(pod: pod(role: annotation), requestedRole: "/red_role", namespace: ns).isAllowed)
    }
    let orange = pod(role: "orange_role")
    #expect(
      try policy.evaluate(pod: orange, requestedRole: "orange_role", namespace: namespace("^red.*$|^.red.*$"))
        == .forbidden(explanation: "namespace policy expression '^red.*$|^.red.*$' forbids role 'orange_role'"))
    #expect(
      !(try policy.evaluate(pod: orange, requestedRole: "/orange_role", namespace: namespace("^red.*$|^.red.*$"))
        .isAllowed))
  }

  @Test(arguments: [true, false])
  func missingOrEmptyAnnotationDenies(_ strict: Bool) throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: ""))
    for permitted in [nil, ""] as [String?] {
      for requested in ["red_role", "/red_role"] {
        let decision = try policy.evaluate(
          pod: pod(role: "red_role"), requestedRole: requested, namespace: namespace(permitted, strict: strict))
        #expect(
          decision == .forbidden(explanation: "namespace policy expression '(empty)' forbids role '\(requested)'"))
      }
    }
    // A namespace missing from the cache denies too (kiam panicked here).
    #expect(!(try policy.evaluate(pod: pod(role: "red_role"), requestedRole: "red_role", namespace: nil).isAllowed))
  }

  @Test func vagueExpressionsDenyInStrictModeOnly() throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::123456789012:role/"))
    for expression in ["o", "role"] {
      #expect(
        !(try policy.evaluate(pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace(expression))
          .isAllowed))
      #expect(
        try policy.evaluate(
          pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace(expression, strict: false)
        ).isAllowed)
    }
    #expect(
      try policy.evaluate(pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace(".*role"))
        .isAllowed)
    #expect(
      try policy.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace(".*role", strict: false)
      ).isAllowed)
  }

  @Test func baseARNPolicies() throws {
    let base = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::123456789012:role/"))
    #expect(
      try base.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace("arn:aws:iam::123456789012:role/.*")
      ).isAllowed)
    let empty = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: ""))
    #expect(
      !(try empty.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace("arn:aws:iam::123456789012:role/*")
      ).isAllowed))
    let sub = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::123456789012:role/subpath/"))
    #expect(
      try sub.evaluate(pod: pod(role: "red_role"), requestedRole: "red_role", namespace: namespace(".*/subpath/.*"))
        .isAllowed)
    #expect(
      !(try sub.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role",
        namespace: namespace("arn:aws:iam::123456789012:role/red.*")
      ).isAllowed))
    #expect(
      try sub.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role",
        namespace: namespace("arn:aws:iam::123456789012:role/subpath/red_role")
      ).isAllowed)
    #expect(
      !(try sub.evaluate(
        pod: pod(role: "red_role"), requestedRole: "red_role",
        namespace: namespace("arn:aws:iam::123456789012:role/subpath/blue_role")
      ).isAllowed))
  }

  @Test func strictModeGroupsAlternations() throws {
    // kiam wrapped "^a|b$" without a group, allowing any ARN that merely starts with a;
    // here the whole ARN must match one alternative.
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::1:role/"))
    let ns = namespace("arn:aws:iam::1:role/a|arn:aws:iam::1:role/b")
    #expect(try policy.evaluate(pod: pod(role: "a"), requestedRole: "a", namespace: ns).isAllowed)
    #expect(try policy.evaluate(pod: pod(role: "b"), requestedRole: "b", namespace: ns).isAllowed)
    #expect(!(try policy.evaluate(pod: pod(role: "abc"), requestedRole: "abc", namespace: ns).isAllowed))
  }

  @Test func invalidExpressionDeniesWithTheRegexError() throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::1:role/"))
    let decision = try policy.evaluate(pod: pod(role: "a"), requestedRole: "a", namespace: namespace("(unclosed"))
    guard case .forbidden(let explanation) = decision else {
      Issue.record("invalid regex allowed")
      return
    }
    #expect(explanation.contains("'(unclosed' is invalid"))
    #expect(explanation.contains("error parsing regexp"))
  }

  /// An expression that does not parse on its own denies in every mode: wrapping it as text used
  /// to turn `…:role/team-a)|(.*` into `^(?:…:role/team-a)|(.*)$`, which allowed every role.
  @Test(arguments: [PermittedMatching.wholeARN, .anywhereInARN, .anywhereInAnnotation])
  func aMalformedExpressionDeniesEveryRole(_ matching: PermittedMatching) throws {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::123456789012:role/"))
    let expression = "arn:aws:iam::123456789012:role/team-a)|(.*"
    let namespace = NamespaceRecord(name: "red", permitted: expression, matching: matching)
    for role in ["cluster-admin", "team-a", "arn:aws:iam::999999999999:role/anything"] {
      let decision = try policy.evaluate(pod: pod(role: role), requestedRole: role, namespace: namespace)
      #expect(
        decision
          == .forbidden(
            explanation:
              "namespace policy expression '\(expression)' is invalid: error parsing regexp: unexpected ): `\(expression)`"
          ),
        "\(role): \(decision)")
    }
  }

  @Test func missingPodAnnotationIsAnErrorNotADenial() {
    let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: "arn:aws:iam::1:role/"))
    #expect(throws: KiamError.self) {
      try policy.evaluate(pod: pod(role: ""), requestedRole: "a", namespace: namespace(".*"))
    }
  }
}

@Suite struct PermittedModeTests {
  let policy = AssumeRolePolicy(resolver: RoleARNResolver(baseARN: PermittedCase.base))

  func allowed(_ c: PermittedCase, _ matching: PermittedMatching) throws -> Bool {
    let pod = PodRecord(namespace: "apps", name: "app", ips: ["10.0.0.1"], role: c.annotation)
    let namespace = NamespaceRecord(name: "apps", permitted: c.expression, matching: matching)
    return try policy.evaluate(pod: pod, requestedRole: c.annotation, namespace: namespace).isAllowed
  }

  @Test(arguments: PermittedCase.all)
  func eachModeDecidesAsKiamDid(_ c: PermittedCase) throws {
    #expect(try allowed(c, .wholeARN) == c.v4)
    #expect(try allowed(c, .anywhereInARN) == c.v4Unanchored)
    #expect(try allowed(c, .anywhereInAnnotation) == c.v3)
  }

  @Test func v3ExplainsWithTheAnnotation() throws {
    let pod = PodRecord(namespace: "apps", name: "app", ips: ["10.0.0.1"], role: "db")
    let namespace = NamespaceRecord(name: "apps", permitted: "^app-.*$", matching: .anywhereInAnnotation)
    #expect(
      try policy.evaluate(pod: pod, requestedRole: "db", namespace: namespace)
        == .forbidden(explanation: "namespace policy expression '^app-.*$' forbids role 'db'"))
  }
}

extension PolicyDecision {
  var isAllowed: Bool {
    if case .allowed = self { return true }
    return false
  }
}

@Suite struct SessionNameTests {
  let role = ResolvedRole(name: "r", arn: "arn:aws:iam::1:role/r")

  @Test(arguments: [
    ("testing", "kiam-testing"),
    ("testing@#&-test%", "kiam-testing@---test-"),
    ("", "kiam-kiam"),
    ("a b/c:d", "kiam-a-b-c-d"),
    ("ünïcode", "kiam--n-code"),
  ])
  func sanitised(_ annotation: String, _ expected: String) {
    #expect(RoleIdentity(role: role, sessionNameAnnotation: annotation).sessionName(defaultSession: "kiam") == expected)
  }

  @Test func truncatedTo63WhenLongerThan64() {
    let long = String(repeating: "a", count: 70)
    let name = RoleIdentity(role: role, sessionNameAnnotation: long).sessionName(defaultSession: "kiam")
    #expect(name.count == 63)
    #expect(name.hasPrefix("kiam-"))
    let sixtyFour = String(repeating: "b", count: 59)
    #expect(RoleIdentity(role: role, sessionNameAnnotation: sixtyFour).sessionName(defaultSession: "kiam").count == 64)
  }

  @Test func defaultSessionFlag() {
    #expect(RoleIdentity(role: role).sessionName(defaultSession: "app") == "kiam-app")
  }

  @Test func cacheKeyAndMasking() {
    let identity = RoleIdentity(role: role, sessionNameAnnotation: "s", externalID: "secret-id")
    #expect(identity.description == "arn:aws:iam::1:role/r|s|secret-id")
    #expect(identity.maskedExternalID == "******-id")
  }
}
