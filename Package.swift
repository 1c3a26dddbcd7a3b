// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: CServiceKit <- HTTP1 (pure parsing) <- ServiceKit (sockets, event
// loops, server, router, logging, the service runtime) <- App (the executable a forker edits).
let package = Package(
    name: "swift-service-template",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "service", targets: ["App"]),
        .library(name: "ServiceKit", targets: ["ServiceKit"]),
        .executable(name: "drill", targets: ["Drill"]),
    ],
    // `swift build --traits TLS` adds HTTPS through OpenSSL (libssl-dev). Off by default: the
    // default build links no OpenSSL, and the default image stays under its 16 MiB limit.
    traits: [
        .trait(name: "TLS", description: "HTTPS through OpenSSL: --tls-cert-file and --tls-key-file"),
        // `swift build --traits OTel` exports spans over OTLP/HTTP through swift-otel, configured
        // by the OTEL_* variables. Off by default: it links SwiftNIO and AsyncHTTPClient.
        .trait(name: "OTel", description: "Span export over OTLP/HTTP through swift-otel (OTEL_* variables)"),
        .default(enabledTraits: []),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-w3c-trace-context.git", from: "1.0.0"),
        // Only its OTLP/HTTP exporter: its default traits add OTLP/gRPC (grpc-swift) as well.
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // The few Linux calls and constants the Glibc/Musl Swift modules do not import
        // (epoll, eventfd, accept4).
        .target(name: "CServiceKit"),
        // OpenSSL's few calls the TLS seam needs, as functions (its macros do not import).
        // Built only with the TLS trait; needs libssl-dev.
        .target(name: "CTLS", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // HTTP/1.1 message parsing and serialization: bytes in, values or typed errors out.
        // No sockets, no clocks, no Foundation; this is the part to fuzz.
        .target(name: "HTTP1"),
        // Go's duration syntax (`500ms`, `1m30s`), shared by the service's flags and the drill's.
        .target(name: "GoDuration"),
        .target(
            name: "ServiceKit",
            dependencies: [
                "CServiceKit",
                .target(name: "CTLS", condition: .when(traits: ["TLS"])),
                "GoDuration",
                "HTTP1",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                // The server's metrics go through swift-metrics' API, so any backend can take them.
                .product(name: "CoreMetrics", package: "swift-metrics"),
                // The backend the runtime bootstraps: `/metrics` in Prometheus' text format.
                .product(name: "Prometheus", package: "swift-prometheus"),
                // Tracing: spans through swift-distributed-tracing's API (any tracer can take
                // them; its InstrumentationContext is the ServiceContext), W3C `traceparent` and
                // `tracestate` through swift-w3c-trace-context.
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
                .product(name: "OTel", package: "swift-otel", condition: .when(traits: ["OTel"])),
            ]
        ),
        // The application: its routes, handlers and settings; the runtime is ServiceKit's.
        .executableTarget(
            name: "App",
            dependencies: [
                "ServiceKit",
                // For the app's own logging, its background services and its spans.
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // A raw-socket HTTP client for end-to-end tests, and the executable's name they start;
        // never shipped.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "HTTP1Tests", dependencies: ["HTTP1"]),
        .testTarget(name: "GoDurationTests", dependencies: ["GoDuration"]),
        .testTarget(
            name: "ServiceKitTests",
            dependencies: [
                "ServiceKit", "TestSupport",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "W3CTraceContext", package: "swift-w3c-trace-context"),
            ]
        ),
        .testTarget(
            name: "AppTests",
            dependencies: ["App", "ServiceKit", "TestSupport"]
        ),
        // The shutdown drill: keep-alive load, SIGTERM at a chosen moment, a report of every
        // request's fate. A dev tool; it shares no code with ServiceKit so it judges it independently.
        .executableTarget(
            name: "Drill",
            dependencies: [
                "GoDuration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "DrillTests", dependencies: ["Drill", "TestSupport"]),
    ]
)
