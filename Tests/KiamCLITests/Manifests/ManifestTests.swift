import Foundation
import KiamAgent
import KiamServer
import KiamShared
import KiamTestSupport
import Testing

@testable import kiam

/// The kustomize base in `manifests/` and the example overlay with both components: they render,
/// every container's arguments and probe commands go through kiam's own parser against the files
/// the pod would really have, and the pieces agree with each other (ports, names, RBAC).
@Suite struct ManifestTests {
  static let renderings = [RenderedManifests.base, RenderedManifests.overlay]

  @Test(arguments: renderings)
  func rendersEveryObject(_ path: String) throws {
    #expect(try RenderedManifests.render(path).objects.count >= 9)
  }

  /// Our renderer and `kubectl kustomize` produce the same objects, field for field.
  @Test(
    .enabled(if: ManifestTests.kubectl() != nil, "kubectl (with kustomize built in) is not installed"),
    arguments: renderings)
  func rendersLikeKubectl(_ path: String) async throws {
    let ours = try RenderedManifests.render(path)
    let kubectl = try #require(Self.kubectl())
    let result = try await Self.run([kubectl, "kustomize", "\(KiamProcess.packageRoot)/\(path)"])
    #expect(result.status == 0, "\(result.output)")
    let theirs = try KustomizeRenderer.documents(yaml: result.output, source: "kubectl kustomize \(path)")
    let a = try KustomizeRenderer.canonical(ours.objects)
    let b = try KustomizeRenderer.canonical(theirs)
    #expect(Set(a.keys) == Set(b.keys))
    for (key, json) in a { #expect(json == b[key], "\(key) differs from kubectl's rendering") }
  }

  /// Every container command is `/kiam` and its arguments parse as kiam would parse them in the
  /// pod: TLS and token files must exist in the pod's volumes under the names the flags use.
  @Test(arguments: renderings)
  func everyContainerParsesAgainstItsVolumes(_ path: String) async throws {
    let rendered = try RenderedManifests.render(path)
    let secretKeys = try await MakeSecrets.keys()
    #expect(rendered.workloads.count == 2)
    for workload in rendered.workloads {
      for container in workload.containers {
        let root = try Self.podFileRoot(workload: workload, container: container, secretKeys: secretKeys)
        defer { root.remove() }
        #expect(container["command"] as? [String] == ["/kiam"])
        let args = container["args"] as? [String] ?? []
        let environment = Self.environment(of: container)
        let context = ResolveContext(environment: environment, fileRoot: root.path)
        switch args.first {
        case "server":
          let (config, warnings) = try parseServer(args, context: context)
          #expect(warnings.isEmpty, "\(warnings)")
          #expect(config.bind.port == 443)
        case "agent":
          let (config, warnings) = try parseAgent(args, context: context)
          #expect(warnings.isEmpty, "\(warnings)")
          #expect(config.hosts == ["10.0.0.5", "fd00:10::5"], "HOST_IP must come from status.podIPs (both families)")
        default:
          Issue.record("\(workload.name): unexpected arguments \(args)")
        }
        for probe in ["livenessProbe", "readinessProbe"] {
          guard let command = container.value(probe, "exec", "command") as? [String] else { continue }
          #expect(command.first == "/kiam")
          let (health, warnings) = try parseHealth(Array(command.dropFirst()), context: context)
          #expect(warnings.isEmpty)
          #expect(health.serverAddress == HostPort(host: "127.0.0.1", port: 443))
          #expect(health.timeout <= .seconds(Int64(container.value(probe, "timeoutSeconds") as? Int ?? 1)))
        }
      }
    }
  }

  /// Names, ports, labels and annotations line up between the Service, the workloads, the probes
  /// and the flags.
  @Test(arguments: renderings)
  func piecesAgree(_ path: String) throws {
    let rendered = try RenderedManifests.render(path)
    let server = try rendered.object(kind: "Deployment", name: "kiam-server")
    let agent = try rendered.object(kind: "DaemonSet", name: "kiam-agent")
    let service = try rendered.object(kind: "Service", name: "kiam-server")
    let pdb = try rendered.object(kind: "PodDisruptionBudget", name: "kiam-server")
    for object in rendered.objects
    where !["ClusterRole", "ClusterRoleBinding"].contains(object["kind"] as? String ?? "") {
      #expect(object.namespace == "kube-system", "\(object["kind"] ?? "")/\(object.name)")
    }
    let serverArgs = try Self.server(server)
    let agentArgs = try Self.agent(agent)

    // Server: 3 replicas, one per node, a PDB and a headless Service in front.
    #expect(server.spec["replicas"] as? Int == 3)
    #expect(
      server.value(
        "spec", "template", "spec", "affinity", "podAntiAffinity",
        "requiredDuringSchedulingIgnoredDuringExecution", 0, "topologyKey") as? String == "kubernetes.io/hostname")
    #expect(service.value("spec", "clusterIP") as? String == "None")
    let selector = service.value("spec", "selector") as? [String: String] ?? [:]
    #expect(!selector.isEmpty && selector.allSatisfy { server.podLabels[$0.key] == $0.value })
    #expect(selector.contains { agent.podLabels[$0.key] != $0.value }, "the Service must not select agents")
    let pdbSelector = pdb.value("spec", "selector", "matchLabels") as? [String: String] ?? [:]
    #expect(pdbSelector == server.value("spec", "selector", "matchLabels") as? [String: String])
    #expect(pdb.value("spec", "maxUnavailable") as? Int == 1)
    #expect(service.value("spec", "ports", 0, "targetPort") as? Int == serverArgs.bind.port)

    // The agent reaches the servers through the headless Service by its name.
    #expect(agentArgs.serverAddress.host == service.name)
    #expect(agentArgs.serverAddress.port == service.value("spec", "ports", 0, "port") as? Int)
    #expect(agentArgs.iptables && !agentArgs.iptablesRemove, "the DNAT rule stays while the agent restarts")
    #expect(agent.podSpec["hostNetwork"] as? Bool == true && server.podSpec["hostNetwork"] as? Bool == true)
    #expect(agent.podSpec["dnsPolicy"] as? String == "ClusterFirstWithHostNet")
    #expect(agent.containers[0].value("env", 0, "valueFrom", "fieldRef", "fieldPath") as? String == "status.podIPs")

    // Probes: kiam health against the server's own port; /ping and /health on the agent's port.
    #expect(agent.containers[0].value("livenessProbe", "httpGet", "path") as? String == "/ping")
    #expect(agent.containers[0].value("readinessProbe", "httpGet", "path") as? String == "/health")
    for probe in ["livenessProbe", "readinessProbe"] {
      #expect(agent.containers[0].value(probe, "httpGet", "port") as? Int == agentArgs.port)
      #expect(server.containers[0].value(probe, "exec", "command", 1) as? String == "health")
    }

    // Prometheus scrape annotations name the ports the processes listen on, and the two differ
    // (both are on the host network, and agents run on the servers' nodes too).
    #expect(server.podAnnotations["prometheus.io/scrape"] == "true")
    #expect(agent.podAnnotations["prometheus.io/scrape"] == "true")
    #expect(server.podAnnotations["prometheus.io/port"] == serverArgs.prometheusListenAddress.map { String($0.port) })
    #expect(agent.podAnnotations["prometheus.io/port"] == agentArgs.prometheusListenAddress.map { String($0.port) })
    #expect(serverArgs.prometheusListenAddress?.port != agentArgs.prometheusListenAddress?.port)
    let serverPorts: Set<Int> = [serverArgs.bind.port, serverArgs.prometheusListenAddress?.port ?? 0]
    let agentPorts: Set<Int> = [agentArgs.port, agentArgs.prometheusListenAddress?.port ?? 0]
    #expect(serverPorts.isDisjoint(with: agentPorts))

    // Least privilege in the container: nothing but the capability each one needs, read-only root.
    let expectations: [(Object, Set<String>)] = [(server, ["NET_BIND_SERVICE"]), (agent, ["NET_ADMIN", "NET_RAW"])]
    for (workload, capabilities) in expectations {
      let security = workload.containers[0]["securityContext"] as? Object ?? [:]
      #expect(security.value("capabilities", "drop") as? [String] == ["ALL"], "\(workload.name)")
      #expect(Set(security.value("capabilities", "add") as? [String] ?? []) == capabilities, "\(workload.name)")
      #expect(security["readOnlyRootFilesystem"] as? Bool == true)
      #expect(security["allowPrivilegeEscalation"] as? Bool == false)
      #expect(security["privileged"] == nil)
    }
    // The agent shares the node's xtables lock with other iptables users.
    let lock = agent.volumes.first { $0.value("hostPath", "path") as? String == "/run/xtables.lock" }
    #expect(lock?.value("hostPath", "type") as? String == "FileOrCreate")
    let lockMount = (agent.containers[0]["volumeMounts"] as? [Object] ?? []).first {
      $0["name"] as? String == lock?["name"] as? String
    }
    #expect(lockMount?["mountPath"] as? String == "/run/xtables.lock")
  }

  /// The server's account may read pods and namespaces and write events; TokenReview only when
  /// node binding is on. The agent's account has no permissions and no mounted token.
  @Test(arguments: renderings)
  func rbacIsLeastPrivilege(_ path: String) throws {
    let rendered = try RenderedManifests.render(path)
    let server = try rendered.object(kind: "Deployment", name: "kiam-server")
    let nodeBinding = (server.containers[0]["args"] as? [String] ?? []).contains("--require-node-identity")
    var granted: [String: Set<String>] = [:]
    var agentGrants = 0
    for binding in rendered.objects(kind: "ClusterRoleBinding") + rendered.objects(kind: "RoleBinding") {
      let subjects = binding["subjects"] as? [Object] ?? []
      let role = try rendered.object(kind: "ClusterRole", name: binding.value("roleRef", "name") as? String ?? "")
      for subject in subjects {
        #expect(subject["kind"] as? String == "ServiceAccount")
        #expect(subject["namespace"] as? String == "kube-system")
        if subject["name"] as? String == "kiam-agent" { agentGrants += 1 }
        guard subject["name"] as? String == "kiam-server" else { continue }
        for rule in role["rules"] as? [Object] ?? [] {
          for group in rule["apiGroups"] as? [String] ?? [] {
            for resource in rule["resources"] as? [String] ?? [] {
              granted["\(group)/\(resource)", default: []].formUnion(rule["verbs"] as? [String] ?? [])
            }
          }
        }
      }
    }
    var expected: [String: Set<String>] = [
      "/pods": ["get", "list", "watch"], "/namespaces": ["get", "list", "watch"], "/events": ["create", "patch"],
    ]
    if nodeBinding { expected["authentication.k8s.io/tokenreviews"] = ["create"] }
    #expect(granted == expected)
    #expect(agentGrants == 0)
    let agentAccount = try rendered.object(kind: "ServiceAccount", name: "kiam-agent")
    #expect(agentAccount["automountServiceAccountToken"] as? Bool == false)
    #expect(
      try rendered.object(kind: "DaemonSet", name: "kiam-agent").podSpec["serviceAccountName"] as? String
        == "kiam-agent")
  }

  /// The overlay turns on node binding on both sides with a projected token of audience kiam,
  /// and takes the certificates from cert-manager with the server names agents and probes use.
  @Test func overlayEnablesNodeIdentityAndCertManager() throws {
    let rendered = try RenderedManifests.render(RenderedManifests.overlay)
    let server = try rendered.object(kind: "Deployment", name: "kiam-server")
    let agent = try rendered.object(kind: "DaemonSet", name: "kiam-agent")
    let serverArgs = try Self.server(server)
    let agentArgs = try Self.agent(agent)
    #expect(serverArgs.requireNodeIdentity)
    let tokenFile = try #require(agentArgs.nodeIdentityTokenFile)
    let token = try #require(agent.volumes.first { $0.value("projected", "sources", 0, "serviceAccountToken") != nil })
    #expect(
      token.value("projected", "sources", 0, "serviceAccountToken", "audience") as? String
        == AgentIdentityMetadata.audience)
    let mount = (agent.containers[0]["volumeMounts"] as? [Object] ?? []).first {
      $0["name"] as? String == token["name"] as? String
    }
    let tokenPath = token.value("projected", "sources", 0, "serviceAccountToken", "path") as? String ?? ""
    #expect((mount?["mountPath"] as? String).map { "\($0)/\(tokenPath)" } == tokenFile)

    let certificates = rendered.objects(kind: "Certificate")
    let serverCertificate = try #require(
      certificates.first { $0.value("spec", "secretName") as? String == "kiam-server-tls" })
    let dnsNames = serverCertificate.value("spec", "dnsNames") as? [String] ?? []
    #expect(dnsNames.contains(agentArgs.serverAddress.host))
    #expect(
      (serverCertificate.value("spec", "ipAddresses") as? [String] ?? []).contains("127.0.0.1"),
      "health probes dial 127.0.0.1")
    #expect(
      Set(serverCertificate.value("spec", "usages") as? [String] ?? []).isSuperset(of: ["server auth", "client auth"]))
    let agentCertificate = try #require(
      certificates.first { $0.value("spec", "secretName") as? String == "kiam-agent-tls" })
    #expect((agentCertificate.value("spec", "usages") as? [String] ?? []).contains("client auth"))
    let issuers = Set(rendered.objects(kind: "Issuer").map(\.name))
    for certificate in certificates {
      #expect(issuers.contains(certificate.value("spec", "issuerRef", "name") as? String ?? ""), "\(certificate.name)")
    }
  }

  /// `make secrets` (scripts/make-secrets.sh): the Secrets it writes serve mutual TLS between a
  /// real server and the health probe, with the agent's certificate as the client and the
  /// Service name in the server's certificate.
  @Test func makeSecretsServeMutualTLS() async throws {
    let secrets = try await MakeSecrets.run(namespace: "kiam-system")
    defer { secrets.directory.remove() }
    #expect(secrets.namespaces == ["kiam-system"])
    #expect(Set(secrets.files.keys) == ["kiam-server-tls", "kiam-agent-tls"])
    let root = try TemporaryDirectory(prefix: "kiam-secrets")
    defer { root.remove() }
    for (secret, files) in secrets.files {
      for (name, data) in files { try root.write("\(secret)/\(name)", String(decoding: data, as: UTF8.self)) }
    }
    let sans = try await Self.run([
      "openssl", "x509", "-in", "\(root.path)/kiam-server-tls/server.pem", "-noout", "-ext", "subjectAltName",
    ])
    for name in ["DNS:kiam-server", "DNS:kiam-server.kiam-system.svc", "IP Address:127.0.0.1"] {
      #expect(sans.output.contains(name), "\(sans.output)")
    }
    let manifests = try TemporaryDirectory(prefix: "kiam-pods")
    defer { manifests.remove() }
    let port = try FreePort.next()
    let tls = "\(root.path)/kiam-server-tls"
    let server = try KiamProcess([
      "server", "--pod-manifests=\(manifests.path)", "--bind=127.0.0.1:\(port)", "--cert=\(tls)/server.pem",
      "--key=\(tls)/server-key.pem", "--ca=\(tls)/ca.pem", "--role-base-arn=arn:aws:iam::123456789012:role/",
      "--sts-endpoint=http://127.0.0.1:9",
    ])
    defer { server.signal(SIGKILL) }
    let agentTLS = "\(root.path)/kiam-agent-tls"
    for address in ["127.0.0.1:\(port)", "localhost:\(port)"] {
      let health = try await KiamProcess.run([
        "health", "--cert=\(agentTLS)/agent.pem", "--key=\(agentTLS)/agent-key.pem", "--ca=\(agentTLS)/ca.pem",
        "--server-address=\(address)", "--timeout=10s",
      ])
      #expect(health.status == 0, "\(health.stderr)\n\(server.standardError)")
      #expect(health.stdout.contains("healthy: ok") || health.stderr.contains("healthy: ok"))
    }
    let bad = try await Self.run([
      KiamProcess.packageRoot + "/scripts/make-secrets.sh", secrets.directory.path, "Not_A_Namespace",
    ])
    #expect(bad.status != 0 && bad.output.contains("invalid namespace name"))
  }
}
