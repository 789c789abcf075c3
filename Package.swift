// swift-tools-version:6.1
import PackageDescription

/// One settings array for every target, as Hummingbird, swift-jobs and swift-log do.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "Herald",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldSQLite", targets: ["HeraldSQLite"]),
        .library(name: "HeraldConformance", targets: ["HeraldConformance"]),
        .library(name: "HeraldCQRS", targets: ["HeraldCQRS"]),
        .library(name: "HeraldTesting", targets: ["HeraldTesting"]),
        .library(name: "HeraldPostgres", targets: ["HeraldPostgres"]),
        .library(name: "HeraldWire", targets: ["HeraldWire"]),
        .library(name: "HeraldServer", targets: ["HeraldServer"]),
        .library(name: "HeraldClient", targets: ["HeraldClient"]),
        .library(name: "HeraldCLI", targets: ["HeraldCLI"]),
        .executable(name: "herald", targets: ["herald"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        // `swift package generate-documentation`: the DocC catalogs of the library products.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "HeraldCore",
            dependencies: [
                // Spans and metrics of the library (no backend: the application bootstraps one).
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldSQLite",
            dependencies: [
                "HeraldCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the statements of the hot path (BoundStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldConformance",
            dependencies: ["HeraldCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldPostgres",
            dependencies: [
                "HeraldCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldWire",
            dependencies: ["HeraldCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldServer",
            dependencies: [
                "HeraldCore",
                "HeraldWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            resources: [
                .copy("openapi.yaml"),
                // The web console, compiled into the executable as byte arrays (`PackageResources`).
                .embedInCode("Console/index.html"), .embedInCode("Console/style.css"), .embedInCode("Console/icon.svg"),
                .embedInCode("Console/app.js"), .embedInCode("Console/api.js"), .embedInCode("Console/dom.js"),
                .embedInCode("Console/chart.js"), .embedInCode("Console/entities.js"), .embedInCode("Console/entity.js"),
                .embedInCode("Console/messages.js"), .embedInCode("Console/deadletters.js"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldClient",
            dependencies: [
                "HeraldCore",
                "HeraldWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldCLI",
            dependencies: [
                "HeraldCore",
                "HeraldWire",
                "HeraldSQLite",
                "HeraldClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldTestSupport",
            dependencies: ["CHeraldSpawn"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldPostgresTesting",
            dependencies: ["HeraldTestSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldCQRS",
            dependencies: [
                "HeraldCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "HeraldTesting",
            dependencies: ["HeraldCore", "HeraldCQRS", "HeraldSQLite"],
            swiftSettings: swiftSettings
        ),
        // The tests' tracer: an in-memory tracer that propagates `traceparent`.
        .target(
            name: "HeraldTracingTesting",
            dependencies: [
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ConferenceDemo",
            dependencies: ["HeraldCore", "HeraldCQRS", "HeraldSQLite", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .target(name: "CHeraldSpawn"),
        // AMQP 1.0 (the protocol of Azure Service Bus): types, frames and state machines, without I/O.
        .target(
            name: "HeraldAMQP",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CHeraldFaultVFS",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        .target(
            name: "HeraldSimulation",
            dependencies: [
                "HeraldCore",
                "HeraldSQLite",
                "CHeraldFaultVFS",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "HeraldSimulation",
                "HeraldCore",
                "HeraldSQLite",
                "HeraldPostgres",
                "HeraldCQRS",
                "ConferenceDemo",
                "HeraldServer",
                "HeraldClient",
                "HeraldCLI",
                "HeraldAMQPServer",
                "HeraldServiceBusAdministration",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The machinery the tests drive (crash campaign, worker processes, a throwaway PostgreSQL),
        // kept out of the shipped `herald`.
        .executableTarget(
            name: "herald-lab",
            dependencies: [
                "HeraldSimulation",
                "HeraldCore",
                "HeraldSQLite",
                "HeraldPostgres",
                "HeraldPostgresTesting",
                "HeraldTestSupport",
                "HeraldClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The README's examples: its Swift code is these files (`.ci/readme-examples` checks that
        // and builds them in a package of their own); ExamplesTests runs them.
        .executableTarget(
            name: "FirstQueue",
            dependencies: ["HeraldCore", "HeraldSQLite"],
            path: "Examples/FirstQueue",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Registrations",
            dependencies: ["HeraldCore", "HeraldCQRS", "HeraldSQLite"],
            path: "Examples/Registrations",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "PostgresQueue",
            dependencies: ["HeraldCore", "HeraldPostgres"],
            path: "Examples/PostgresQueue",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "OrdersApp",
            dependencies: [
                "HeraldCore", "HeraldCQRS", "HeraldSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/OrdersApp",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ExamplesTests",
            dependencies: [
                "HeraldTestSupport", "HeraldPostgresTesting", "HeraldCore", "HeraldSQLite",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldCoreTests",
            dependencies: ["HeraldCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldCQRSTests",
            dependencies: [
                "HeraldCore", "HeraldCQRS", "HeraldSQLite", "HeraldTesting", "HeraldTracingTesting",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConferenceDemoTests",
            dependencies: ["HeraldCore", "HeraldCQRS", "HeraldSQLite", "HeraldTesting", "ConferenceDemo"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldSimulationTests",
            dependencies: ["HeraldCore", "HeraldSQLite", "HeraldSimulation", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldSQLiteTests",
            dependencies: [
                "HeraldCore", "HeraldSQLite", "HeraldConformance", "HeraldTestSupport", "CHeraldFaultVFS",
                // The migrations test writes a file of an earlier schema.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldServerTests",
            dependencies: [
                "HeraldCore", "HeraldWire", "HeraldServer", "HeraldClient", "HeraldCLI", "HeraldSQLite", "HeraldConformance", "HeraldTestSupport",
                "HeraldTracingTesting",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldCLITests",
            dependencies: ["HeraldCore", "HeraldSQLite", "HeraldCLI"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldPostgresTests",
            dependencies: [
                "HeraldCore", "HeraldPostgres", "HeraldPostgresTesting", "HeraldConformance", "HeraldTestSupport", "HeraldClient",
                "HeraldTracingTesting",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // `herald serve`'s AMQP listener: connections on SwiftNIO, run as a Service.
        .target(
            name: "HeraldAMQPServer",
            dependencies: [
                "HeraldAMQP",
                "HeraldCore",
                "HeraldWire",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `herald serve`'s Azure Service Bus administration API (Atom XML over HTTPS).
        .target(
            name: "HeraldServiceBusAdministration",
            dependencies: [
                "HeraldAMQPServer",
                "HeraldCore",
                "HeraldWire",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldServiceBusAdministrationTests",
            dependencies: [
                "HeraldServiceBusAdministration", "HeraldAMQPServer", "HeraldCore", "HeraldSQLite", "HeraldWire",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The codec's fuzz target; see its source for the libFuzzer build.
        .executableTarget(
            name: "FuzzAMQPCodec",
            dependencies: ["HeraldAMQP", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "HeraldAMQPTests",
            dependencies: [
                "HeraldAMQP", "HeraldAMQPServer", "HeraldCore", "HeraldSQLite", "HeraldWire", "HeraldTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
