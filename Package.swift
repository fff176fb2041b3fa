// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Lopper",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lopper", targets: ["lopper"]),
        .library(name: "LopperModel", targets: ["LopperModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries from Debian, wrapped as thin system-library targets.
        .systemLibrary(name: "CNNG", providers: [.apt(["libnng-dev"])]),
        .systemLibrary(name: "CBLAS", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CGLPK", providers: [.apt(["libglpk-dev"])]),
        // prctl(2), which Swift cannot call (it is variadic): local workers die with their parent.
        .systemLibrary(name: "CProcessControl"),
        // Our convolution tiles in C, compiled per instruction set and chosen at load time;
        // optimised in debug builds too, or the tests that run detectors would crawl.
        .target(name: "CKernels", exclude: ["conv_taps.inc", "pointwise.inc"], cSettings: [.unsafeFlags(["-O2"])]),

        // ONNX protobuf schema (ours, from the IR spec) and the Swift generated from it.
        .target(
            name: "ONNXProto",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")],
            exclude: ["onnx.proto", "generate.sh"]
        ),
        // Model I/O and graph: loading, saving, external data, shape inference, statistics. No execution.
        .target(
            name: "LopperModel",
            dependencies: [
                "ONNXProto",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ]
        ),
        // CPU executor for ONNX graphs in float32: kernels, load-time planning, OpenBLAS GEMM.
        .target(name: "LopperRuntime", dependencies: ["LopperModel", "CBLAS", "CKernels"]),
        // Prune groups, granularities, importance criteria and graph surgery.
        .target(name: "LopperPruning", dependencies: ["LopperModel", "LopperRuntime"]),
        // Hardware profiles and the cost model: MACs, bytes, peak memory and latency on a device.
        .target(
            name: "LopperHardware",
            dependencies: ["LopperModel", "LopperRuntime", "LopperPruning", "ONNXProto", .product(name: "Yams", package: "Yams")]
        ),
        // Choosing one pruning option per group under budgets: DP, MIP (GLPK), Lagrangian;
        // damage-curve interpolation and the baselines. Pure: no I/O, no other Lopper module.
        .target(name: "LopperAllocation", dependencies: ["CGLPK"]),
        // From a sweep and a cost model to pruned models per profile: menus, allocation checked on
        // the assembled plan's cost, baselines, assembly and export batches.
        .target(
            name: "LopperExport",
            dependencies: ["LopperModel", "LopperRuntime", "LopperPruning", "LopperHardware", "LopperSensitivity", "LopperAllocation",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),
        // The HTML report: a sweep and its exports as inline SVG charts and tables in one file.
        .target(name: "LopperReport", dependencies: ["LopperExport", "LopperSensitivity", "LopperAllocation", "LopperModel"]),
        // The coordinator's live status over HTTP: the report page, JSON and Prometheus metrics.
        .target(
            name: "LopperStatus",
            dependencies: ["LopperReport", "LopperSensitivity",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "Prometheus", package: "swift-prometheus")]
        ),
        // A thin Swift layer over libnng: sockets, contexts, async send/receive, owned messages.
        .target(name: "LopperMessaging", dependencies: ["CNNG"]),
        // Sensitivity sweeps: jobs, metrics, prefix reuse, the SQLite results store.
        .target(
            name: "LopperSensitivity",
            dependencies: [
                "LopperModel", "LopperRuntime", "LopperPruning",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The coordinator <-> worker wire protocol: our lopper_wire.proto, the Swift generated
        // from it, and the authenticated frame around every message.
        .target(
            name: "LopperProtocol",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            exclude: ["lopper_wire.proto", "generate.sh"]
        ),
        // Sharding sweeps over nng: scheduler, journal, coordinator, worker, blob cache.
        .target(
            name: "LopperCoordination",
            dependencies: [
                "LopperMessaging", "LopperProtocol", "LopperSensitivity", "LopperModel",
                .product(name: "OrderedCollections", package: "swift-collections"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The command-line interface; `lopper` is a thin main around it.
        .target(
            name: "LopperCLI",
            dependencies: [
                "LopperModel",
                "LopperRuntime",
                "LopperPruning",
                "LopperHardware",
                "LopperAllocation",
                "LopperExport",
                "LopperReport",
                "LopperStatus",
                "LopperSensitivity",
                "LopperCoordination",
                "LopperMessaging",
                "CProcessControl",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(name: "lopper", dependencies: ["LopperCLI"]),

        // Fixtures and reference helpers shared by the test targets.
        .target(name: "LopperTesting", dependencies: ["LopperModel", "ONNXProto"]),
        .testTarget(
            name: "LopperModelTests",
            dependencies: ["LopperModel", "LopperTesting", "ONNXProto", .product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // Depends on the executable so `swift test` builds the `lopper` binary these tests run.
        .testTarget(name: "LopperCLITests", dependencies: ["LopperCLI", "LopperSensitivity", "LopperTesting", "lopper"]),
        .testTarget(
            name: "LopperPruningTests",
            dependencies: ["LopperPruning", "LopperRuntime", "LopperTesting", "ONNXProto",
                           .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                           .product(name: "OrderedCollections", package: "swift-collections")]
        ),
        .testTarget(
            name: "LopperSensitivityTests",
            dependencies: ["LopperSensitivity", "LopperPruning", "LopperRuntime", "LopperTesting",
                           .product(name: "OrderedCollections", package: "swift-collections")]
        ),
        .testTarget(name: "LopperMessagingTests", dependencies: ["LopperMessaging", "LopperTesting"]),
        .testTarget(name: "LopperAllocationTests", dependencies: ["LopperAllocation", "LopperModel"]),
        .testTarget(
            name: "LopperCoordinationTests",
            dependencies: ["LopperCoordination", "LopperProtocol", "LopperMessaging", "LopperSensitivity", "LopperTesting", "lopper",
                           .product(name: "Yams", package: "Yams"), .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(name: "LopperExportTests", dependencies: ["LopperExport", "LopperAllocation", "LopperHardware", "LopperSensitivity", "LopperPruning", "LopperTesting"]),
        .testTarget(name: "LopperReportTests", dependencies: ["LopperReport", "LopperExport", "LopperHardware", "LopperSensitivity", "LopperModel", "LopperTesting"]),
        .testTarget(name: "LopperHardwareTests", dependencies: ["LopperHardware", "LopperPruning", "LopperTesting"]),
        .testTarget(name: "LopperRuntimeTests", dependencies: ["LopperRuntime", "LopperTesting", "ONNXProto"]),
    ],
    swiftLanguageModes: [.v5]
)
