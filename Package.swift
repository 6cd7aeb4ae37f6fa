// swift-tools-version:6.0
import PackageDescription

// Numeric targets are built with -Ounchecked in release: bounds checks in the inner
// loops of kernels cost 2-3x, and every index there is derived from validated shapes.
let numeric: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"], .when(configuration: .release)),
]

let package = Package(
    name: "stylize",
    products: [
        .library(name: "StylizeCore", targets: ["StylizeCore"]),
        .library(name: "StylizeModels", targets: ["StylizeModels"]),
        .library(name: "StylizeEngine", targets: ["StylizeEngine"]),
        .executable(name: "stylize-tool", targets: ["stylize-tool"]),
        // The GStreamer plugin: GST_PLUGIN_PATH=.build/release finds libgststylize.so.
        .library(name: "gststylize", type: .dynamic, targets: ["GstStylize"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),
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
        .target(name: "StylizeCore", dependencies: ["COpenBLAS", "CMalloc"], swiftSettings: numeric),
        .target(name: "StylizeModels", dependencies: ["StylizeCore"], swiftSettings: numeric),
        .target(name: "StylizeEngine", dependencies: ["StylizeModels"], swiftSettings: numeric),
        // The element: a thin C half (GObject boilerplate, trampolines) and the Swift half.
        .target(name: "CShims", dependencies: ["CGStreamer"], path: "CShims", exclude: ["README.md"]),
        .target(name: "GstStylize", dependencies: ["CShims", "CGStreamer", "StylizeEngine", "StylizeCore"]),
        .executableTarget(
            name: "stylize-tool",
            dependencies: [
                "StylizeModels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: numeric
        ),
        .testTarget(name: "StylizeCoreTests", dependencies: ["StylizeCore"]),
        .testTarget(
            name: "StylizeModelsTests",
            dependencies: ["StylizeModels"],
            exclude: ["Fixtures"]
        ),
        .testTarget(name: "StylizeEngineTests", dependencies: ["StylizeEngine"]),
        .testTarget(
            name: "GstStylizeTests",
            dependencies: ["GstStylize", "CShims", "CGStreamer", "CGstCheck", "StylizeEngine", "StylizeCore"]
        ),
        .testTarget(name: "StylizeToolTests", dependencies: ["StylizeModels", "stylize-tool"]),
    ],
    swiftLanguageModes: [.v5]
)
