// swift-tools-version:6.0
import PackageDescription

// Numeric targets are built with -Ounchecked in release: bounds checks in the inner
// loops of kernels cost 2-3x, and every index there is derived from validated shapes.
// On x86-64 they target Haswell (AVX2, FMA): without it SIMD8<Float> is split into two SSE
// halves and the direct convolutions and element-wise kernels run at half speed.
#if arch(x86_64)
let cpuFlags = ["-target-cpu", "haswell"]
#else
let cpuFlags: [String] = []
#endif
let numeric: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + cpuFlags, .when(configuration: .release)),
]
// The engine's library targets build in the Swift 6 language mode: data races there are
// compile errors (issue 16). The element, the relay, the tools and the tests stay in v5.
let swift6: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "stylize",
    products: [
        .library(name: "StylizeCore", targets: ["StylizeCore"]),
        .library(name: "StylizeModels", targets: ["StylizeModels"]),
        .library(name: "StylizeEngine", targets: ["StylizeEngine"]),
        .executable(name: "stylize-tool", targets: ["stylize-tool"]),
        // The GStreamer plugin: GST_PLUGIN_PATH=.build/release finds libgststylize.so.
        .library(name: "gststylize", type: .dynamic, targets: ["GstStylize"]),
        // Restyles an RTSP (or any GStreamer) source and serves it over RTSP (README: RTSP relay).
        .executable(name: "stylize-relay", targets: ["stylize-relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swhitty/FlyingFox", from: "0.27.1"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CSystem", path: "Sources/CSystem"),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(
            name: "CGStreamer",
            path: "Sources/CGStreamer",
            pkgConfig: "gstreamer-video-1.0",
            providers: [.apt(["libgstreamer1.0-dev", "libgstreamer-plugins-base1.0-dev"])]
        ),
        // GstHarness, for the element tests only.
        .systemLibrary(
            name: "CGstCheck",
            path: "Sources/CGstCheck",
            pkgConfig: "gstreamer-check-1.0",
            providers: [.apt(["libgstreamer1.0-dev"])]
        ),
        // gst-rtsp-server, plus appsrc/appsink (gstreamer-app) and GstRTSPConnection
        // (gstreamer-rtsp), which its .pc file lists only as private requirements.
        .systemLibrary(
            name: "CGstRtspServer",
            path: "Sources/CGstRtspServer",
            pkgConfig: "gstreamer-rtsp-server-1.0",
            providers: [.apt(["libgstrtspserver-1.0-dev"])]
        ),
        .target(name: "StylizeCore", dependencies: ["COpenBLAS", "CSystem"], swiftSettings: numeric + swift6),
        .target(name: "StylizeModels", dependencies: ["StylizeCore"], swiftSettings: numeric + swift6),
        .target(name: "StylizeEngine", dependencies: ["StylizeModels", "StylizeProperties", "CZlib", "CSystem"], swiftSettings: numeric + swift6),
        // The element's property table: GParamSpecs, settings, engine defaults, relay options.
        .target(name: "StylizeProperties", swiftSettings: swift6),
        // The element: a thin C half (GObject boilerplate, trampolines) and the Swift half.
        .target(name: "CShims", dependencies: ["CGStreamer"], path: "CShims", exclude: ["README.md"]),
        // GLib / GStreamer macro bridges shared by the element and the relay.
        .target(name: "GstSupport", dependencies: ["CGStreamer"]),
        .target(name: "GstStylize", dependencies: ["CShims", "CGStreamer", "GstSupport", "StylizeEngine", "StylizeCore", "StylizeProperties"]),
        .executableTarget(
            name: "stylize-tool",
            dependencies: [
                "StylizeModels",
                "StylizeEngine",
                "StylizeProperties",
                // bench element runs the element itself, linked in.
                "GstStylize",
                "CGStreamer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: numeric
        ),
        // The RTSP relay: GStreamer-facing pieces in a library so the tests reach them, and
        // a thin executable. It loads the `stylize` element as a plugin at run time.
        .target(
            name: "StylizeRelay",
            dependencies: [
                "CGStreamer",
                "CGstRtspServer",
                "GstSupport",
                "StylizeProperties",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "FlyingFox", package: "FlyingFox"),
            ]
        ),
        .executableTarget(
            name: "stylize-relay",
            dependencies: [
                "StylizeRelay",
                "CSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "StylizeCoreTests", dependencies: ["StylizeCore"], exclude: ["Fixtures"]),
        .testTarget(
            name: "StylizeModelsTests",
            dependencies: ["StylizeModels"],
            exclude: ["Fixtures"]
        ),
        // Builds tiny, complete model folders for engine and element tests.
        .target(name: "StylizeTestSupport", dependencies: ["StylizeEngine", .product(name: "FlyingFox", package: "FlyingFox")],
                path: "Tests/StylizeTestSupport"),
        // Counts malloc calls process-wide for HotPathTests (it defines malloc; tests only).
        .target(name: "CMallocCounter", path: "Tests/CMallocCounter"),
        .testTarget(name: "StylizeEngineTests", dependencies: ["StylizeEngine", "StylizeTestSupport", "CSystem", "CMallocCounter"]),
        .testTarget(
            name: "GstStylizeTests",
            dependencies: ["GstStylize", "CShims", "CGStreamer", "CGstCheck", "StylizeEngine", "StylizeCore", "StylizeProperties",
                           "StylizeTestSupport", "CMallocCounter"]
        ),
        .testTarget(name: "StylizeToolTests", dependencies: ["StylizeModels", "StylizeEngine", "stylize-tool"]),
        // Embedding examples (examples/): the Swift one is this target; the tests run it and
        // the Python and C ones against the built plugin, and stage scripts/install.sh.
        .executableTarget(name: "stylize-embed-example", dependencies: ["StylizeEngine"], path: "examples/swift"),
        .testTarget(name: "EmbeddingTests", dependencies: ["stylize-embed-example", "StylizeEngine", "StylizeTestSupport"]),
        // Unit tests of the relay's pieces and the end-to-end test (RTSP source → relay →
        // two clients) with real processes; GstStylize is linked only to compare defaults.
        .testTarget(
            name: "RelayTests",
            dependencies: ["StylizeRelay", "GstStylize", "CShims", "CGStreamer", "CGstRtspServer", "stylize-relay",
                           .product(name: "Logging", package: "swift-log")],
            exclude: ["rtsp-test-source.py"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
