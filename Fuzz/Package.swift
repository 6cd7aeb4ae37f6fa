// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for the readers of untrusted files (scripts/fuzz.sh builds and runs
// them; Fuzz/README.md). Built with `--sanitize=fuzzer --sanitize=address`, which
// instruments this package and the stylize package it depends on by path; libFuzzer
// supplies `main`, each target defines LLVMFuzzerTestOneInput.
let package = Package(
    name: "stylize-fuzz",
    dependencies: [.package(name: "stylize", path: "..")],
    targets: [
        // safetensors header (SafeTensorsFile) and sharded index (weight_map).
        .executableTarget(name: "fuzz-safetensors", dependencies: [.product(name: "StylizeModels", package: "stylize")]),
        // config.json of every component and stylize.json.
        .executableTarget(name: "fuzz-config", dependencies: [
            .product(name: "StylizeModels", package: "stylize"), .product(name: "StylizeEngine", package: "stylize"),
        ]),
        // tokenizer.json loading, then encoding and decoding a string.
        .executableTarget(name: "fuzz-tokenizer", dependencies: [.product(name: "StylizeModels", package: "stylize")]),
        // PNGCodec.decode.
        .executableTarget(name: "fuzz-png", dependencies: [.product(name: "StylizeEngine", package: "stylize")]),
    ],
    swiftLanguageModes: [.v5]
)
