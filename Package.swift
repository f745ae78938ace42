// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
  .enableUpcomingFeature("MemberImportVisibility"),
]

let testSwiftSettings: [SwiftSetting] = [
  .swiftLanguageMode(.v6),
  .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
  name: "kiam",
  platforms: [.macOS(.v15)],
  products: [
    .executable(name: "kiam", targets: ["kiam"]),
    .library(name: "KiamShared", targets: ["KiamShared"]),
    .library(name: "KiamServer", targets: ["KiamServer"]),
    .library(name: "KiamAgent", targets: ["KiamAgent"]),
  ],
  dependencies: [
    .package(url: "https://github.com/grpc/grpc-swift-2.git", from: "2.4.3"),
    .package(url: "https://github.com/grpc/grpc-swift-nio-transport.git", from: "2.9.2"),
    .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", from: "2.4.1"),
    .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
  ],
  targets: [
    // RE2 (Debian's libre2-dev) behind a small C interface: Go's regexp syntax, linear-time matching.
    .target(
      name: "CRE2",
      path: "Sources/CRE2",
      linkerSettings: [.linkedLibrary("re2")]
    ),
    // Code shared by every process: wire protocol, TLS, logging, metrics, configuration helpers.
    .target(
      name: "KiamShared",
      dependencies: [
        "CRE2",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "NIOCertificateReloading", package: "swift-nio-extras"),
        .product(name: "NIOExtras", package: "swift-nio-extras"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "X509", package: "swift-certificates"),
      ],
      path: "Sources/Shared",
      swiftSettings: swiftSettings
    ),
    // The central server: Kubernetes watch, policy, STS, gRPC KiamService.
    .target(
      name: "KiamServer",
      dependencies: [
        "KiamShared",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Yams", package: "Yams"),
        .product(name: "NIOFoundationCompat", package: "swift-nio"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ],
      path: "Sources/Server",
      swiftSettings: swiftSettings
    ),
    // The node agent: the metadata API pods talk to.
    .target(
      name: "KiamAgent",
      dependencies: [
        "KiamShared",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "UnixSignals", package: "swift-service-lifecycle"),
      ],
      path: "Sources/Agent",
      swiftSettings: swiftSettings
    ),
    // Thin executable: flags -> configuration structs -> applications.
    .executableTarget(
      name: "kiam",
      dependencies: [
        "KiamShared",
        "KiamServer",
        "KiamAgent",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "NIOCore", package: "swift-nio"),
      ],
      path: "Sources/kiam",
      swiftSettings: swiftSettings
    ),
    // Helpers for tests: in-test PKI, a Kubernetes API test server, process runners.
    .target(
      name: "KiamTestSupport",
      dependencies: [
        "KiamShared",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "X509", package: "swift-certificates"),
      ],
      path: "Tests/KiamTestSupport",
      swiftSettings: testSwiftSettings
    ),
    // `make bench`: drives release builds of kiam, moto, wrk, nginx and grpcio; writes bench-results/.
    .executableTarget(
      name: "kiam-bench",
      dependencies: [
        "KiamShared",
        "KiamTestSupport",
        .product(name: "GRPCCore", package: "grpc-swift-2"),
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Benchmarks/kiam-bench",
      swiftSettings: testSwiftSettings
    ),
    .testTarget(
      name: "KiamSharedTests",
      dependencies: [
        "KiamShared",
        "KiamTestSupport",
        .product(name: "InMemoryLogging", package: "swift-log"),
        .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
        .product(name: "NIOEmbedded", package: "swift-nio"),
      ],
      path: "Tests/KiamSharedTests",
      swiftSettings: testSwiftSettings
    ),
    .testTarget(
      name: "KiamServerTests",
      dependencies: [
        "KiamServer", "KiamShared", "KiamTestSupport",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
      ],
      path: "Tests/KiamServerTests",
      resources: [.copy("Fixtures")],
      swiftSettings: testSwiftSettings
    ),
    .testTarget(
      name: "KiamAgentTests",
      dependencies: [
        "KiamAgent", "KiamShared", "KiamTestSupport",
        .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
      ],
      path: "Tests/KiamAgentTests",
      swiftSettings: testSwiftSettings
    ),
    .testTarget(
      name: "KiamE2ETests",
      dependencies: ["KiamShared", "KiamTestSupport"],
      path: "Tests/KiamE2ETests",
      swiftSettings: testSwiftSettings
    ),
    .testTarget(
      name: "KiamCLITests",
      dependencies: [
        "kiam",
        "KiamShared",
        "KiamServer",
        "KiamAgent",
        "KiamTestSupport",
        .product(name: "Yams", package: "Yams"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ],
      path: "Tests/KiamCLITests",
      swiftSettings: testSwiftSettings
    ),
  ],
  cxxLanguageStandard: .cxx17
)
