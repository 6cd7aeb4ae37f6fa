import Foundation
import StylizeEngine
import StylizeModels
import XCTest

/// Runs the built `stylize-tool` binary the way a user does.
final class StylizeToolTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let fixtures = packageRoot + "/Tests/StylizeModelsTests/Fixtures"
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "stylize-tool-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    /// The binary sits next to the test bundle in SwiftPM's build folder.
    private var toolPath: String {
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [nextToTests, nextToTests.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("stylize-tool").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("stylize-tool").path
    }

    @discardableResult
    private func tool(_ args: [String], expectSuccess: Bool = true) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: toolPath)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        if expectSuccess {
            XCTAssertEqual(p.terminationStatus, 0, "stylize-tool \(args.joined(separator: " ")) failed: \(e)")
        }
        return (p.terminationStatus, o, e)
    }

    private func tensor(_ path: String, _ name: String) throws -> Tensor {
        let f = try SafeTensorsFile(path: path)
        return Tensor(shape: f.entries[name]!.shape, data: try f.floats(name))
    }

    func testRunUNetMatchesDiffusers() throws {
        let dir = Self.fixtures + "/unet/sdxl_text_time"
        try tool(["run", "unet", "--model", dir, "--input", dir + "/input.safetensors", "--output", self.dir + "/out.safetensors"])
        assertParityCLI(try tensor(self.dir + "/out.safetensors", "sample"), try tensor(dir + "/output.safetensors", "sample"))
    }

    /// The LLLite parity entry point: IN carries control_image and control_multiplier.
    func testRunUNetWithControlMatchesTheReference() throws {
        let dir = Self.fixtures + "/lllite/sdxl_input_middle"
        try tool(["run", "unet", "--model", dir + "/unet", "--control", dir + "/lllite.safetensors",
                  "--input", dir + "/input.safetensors", "--output", self.dir + "/out.safetensors"])
        assertParityCLI(try tensor(self.dir + "/out.safetensors", "sample"), try tensor(dir + "/output.safetensors", "sample"))
        let wrong = try tool(["run", "unet", "--model", Self.fixtures + "/lllite/sd1x_down/unet", "--control", dir + "/lllite.safetensors",
                              "--input", dir + "/input.safetensors", "--output", self.dir + "/x.safetensors"], expectSuccess: false)
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.err.contains(dir + "/lllite.safetensors"), wrong.err)
    }

    /// init-lllite writes an adapter the loader accepts, with a depth per block grid, and
    /// bench unet --control reports the time it adds.
    func testInitLLLiteAndBenchWithControl() throws {
        let model = Self.packageRoot + "/models/nano"
        let r = try tool(["init-lllite", "--model", model, "--out", dir + "/a.safetensors", "--mlp-dim", "8", "--cond-emb-dim", "8"])
        XCTAssertTrue(r.out.contains("wrote 8 LLLite modules (depth: count 2: 4, 3: 4)"), r.out)
        let b = try tool(["bench", "unet", "--model", model + "/unet", "--control", dir + "/a.safetensors", "--size", "64x64",
                          "--tokens", "8", "--repeats", "2"])
        XCTAssertTrue(b.out.contains("control ") && b.out.contains("without (interleaved medians)"), b.out)
    }

    func testRunVAEEncodeAndDecodeMatchDiffusers() throws {
        let dir = Self.fixtures + "/vae/taesd_narrow16"
        try tool(["run", "vae-encode", "--model", dir, "--input", dir + "/input.safetensors", "--output", self.dir + "/lat.safetensors"])
        assertParityCLI(try tensor(self.dir + "/lat.safetensors", "latent"), try tensor(dir + "/output.safetensors", "latent"))
        try tool(["run", "vae-decode", "--model", dir, "--input", dir + "/input.safetensors", "--output", self.dir + "/img.safetensors",
                  "--threads", "1"])
        assertParityCLI(try tensor(self.dir + "/img.safetensors", "image"), try tensor(dir + "/output.safetensors", "image"))
    }

    /// init-random must produce exactly the tensor names and shapes diffusers creates
    /// for the same config (the fixtures' weights were saved by diffusers).
    func testInitRandomWritesTheSameTensorsAsDiffusers() throws {
        for fixture in ["unet/sdxl_text_time", "unet/bksdm_nomid_lcm", "vae/taesd_stock_fp16"] {
            let out = dir + "/" + fixture.replacingOccurrences(of: "/", with: "_")
            try tool(["init-random", "--config", Self.fixtures + "/\(fixture)/config.json", "--out", out, "--seed", "5"])
            let ours = try SafeTensorsFile(path: out + "/diffusion_pytorch_model.safetensors")
            let reference = try SafeTensorsFile(path: Self.fixtures + "/\(fixture)/diffusion_pytorch_model.safetensors")
            XCTAssertEqual(ours.names, reference.names, fixture)
            for name in reference.names {
                XCTAssertEqual(ours.entries[name]?.shape, reference.entries[name]!.shape, "\(fixture): \(name)")
            }
        }
        // Deterministic for a seed, different across seeds.
        let a = dir + "/a", b = dir + "/b", c = dir + "/c"
        let config = Self.packageRoot + "/tools/configs/taesd/config.json"
        try tool(["init-random", "--config", config, "--out", a, "--seed", "1", "--fp16"])
        try tool(["init-random", "--config", config, "--out", b, "--seed", "1", "--fp16"])
        try tool(["init-random", "--config", config, "--out", c, "--seed", "2", "--fp16"])
        let fa = try Data(contentsOf: URL(fileURLWithPath: a + "/diffusion_pytorch_model.safetensors"))
        XCTAssertEqual(fa, try Data(contentsOf: URL(fileURLWithPath: b + "/diffusion_pytorch_model.safetensors")))
        XCTAssertNotEqual(fa, try Data(contentsOf: URL(fileURLWithPath: c + "/diffusion_pytorch_model.safetensors")))
        XCTAssertEqual(try SafeTensorsFile(path: a + "/diffusion_pytorch_model.safetensors").entries["encoder.layers.0.weight"]?.dtype, .f16)
        _ = try AutoencoderTiny(directory: a)  // loads strictly: every tensor used, every shape right
    }

    func testRunTextEncoderMatchesTransformers() throws {
        for name in ["qwen3_vl", "clip_text_b"] {
            let dir = Self.fixtures + "/text/" + name
            let out = self.dir + "/\(name).safetensors"
            try tool(["run", "text-encoder", "--model", dir, "--input", dir + "/input.safetensors", "--output", out])
            for key in ["last_hidden_state", "hidden_states"] {
                assertParityCLI(try tensor(out, key), try tensor(dir + "/output.safetensors", key))
            }
        }
    }

    /// init-random on transformers configs writes model.safetensors with exactly the
    /// tensors transformers saved for the same config.
    func testInitRandomWritesTheSameTensorsAsTransformers() throws {
        for (fixture, ignored) in [("clip_text_b", Set<String>()), ("qwen3_text_b", []), ("qwen3_vl", [])] {
            let out = dir + "/" + fixture
            try tool(["init-random", "--config", Self.fixtures + "/text/\(fixture)/config.json", "--out", out])
            let ours = try SafeTensorsFile(path: out + "/model.safetensors")
            let reference = try SafeTensorsFile(path: Self.fixtures + "/text/\(fixture)/model.safetensors")
            XCTAssertEqual(ours.names, reference.names.filter { !ignored.contains($0) }, fixture)
            for name in ours.names { XCTAssertEqual(ours.entries[name]?.shape, reference.entries[name]?.shape, "\(fixture): \(name)") }
        }
    }

    /// `stylize-tool stylize` on a tiny model folder assembled with init-random and the
    /// encoder/tokenizer fixtures: deterministic for a seed, different for another seed.
    func testStylizeRestylesAPNGDeterministically() throws {
        let model = dir + "/model"
        let fm = FileManager.default
        try fm.createDirectory(atPath: model + "/scheduler", withIntermediateDirectories: true)
        let unet = dir + "/unet.json", vae = dir + "/vae.json"
        try #"{"_class_name": "UNet2DConditionModel", "in_channels": 8, "out_channels": 4, "block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 2, "cross_attention_dim": 64}"#
            .write(toFile: unet, atomically: true, encoding: .utf8)
        try #"{"_class_name": "AutoencoderTiny", "encoder_block_out_channels": [8, 8, 8, 8], "decoder_block_out_channels": [8, 8, 8, 8], "num_encoder_blocks": [1, 1, 1, 1], "num_decoder_blocks": [1, 1, 1, 1]}"#
            .write(toFile: vae, atomically: true, encoding: .utf8)
        try tool(["init-random", "--config", unet, "--out", model + "/unet"])
        try tool(["init-random", "--config", vae, "--out", model + "/vae"])
        try #"{"_class_name": "DDIMScheduler", "timestep_spacing": "trailing", "prediction_type": "sample", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}"#
            .write(toFile: model + "/scheduler/scheduler_config.json", atomically: true, encoding: .utf8)
        try fm.copyItem(atPath: Self.fixtures + "/text/qwen3_vl", toPath: model + "/text_encoder")
        try fm.copyItem(atPath: Self.fixtures + "/tokenizers/qwen", toPath: model + "/tokenizer")
        try #"{"conditioning_mode": "concat-channels", "text_encoder": {"template": "<|im_start|>user\n{image}{prompt}<|im_end|>", "image_size": [64, 64]}}"#
            .write(toFile: model + "/stylize.json", atomically: true, encoding: .utf8)
        let input = Self.fixtures + "/text/qwen3_vl/image.png"
        for (name, seed) in [("a", "1"), ("b", "1"), ("c", "2")] {
            try tool(["stylize", "--model", model, "--prompt", "oil painting", "--seed", seed, input, dir + "/\(name).png"])
        }
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/a.png"))
        XCTAssertEqual(a, try Data(contentsOf: URL(fileURLWithPath: dir + "/b.png")))
        XCTAssertNotEqual(a, try Data(contentsOf: URL(fileURLWithPath: dir + "/c.png")))
        XCTAssertEqual(Array(a.prefix(4)), [137, 80, 78, 71])
        // The model's working scale applies as in the element; --working-scale overrides it.
        try #"{"conditioning_mode": "concat-channels", "working": {"scale": 0.5}, "text_encoder": {"template": "<|im_start|>user\n{image}{prompt}<|im_end|>", "image_size": [64, 64]}}"#
            .write(toFile: model + "/stylize.json", atomically: true, encoding: .utf8)
        try tool(["stylize", "--model", model, "--prompt", "oil painting", "--seed", "1", input, dir + "/half.png"])
        try tool(["stylize", "--model", model, "--prompt", "oil painting", "--seed", "1", "--working-scale", "1",
                  input, dir + "/full.png"])
        XCTAssertNotEqual(a, try Data(contentsOf: URL(fileURLWithPath: dir + "/half.png")), "the model's working scale was ignored")
        XCTAssertEqual(a, try Data(contentsOf: URL(fileURLWithPath: dir + "/full.png")))
        XCTAssertEqual(try PNGCodec.read(path: dir + "/half.png").width, try PNGCodec.read(path: input).width)
        // The contact sheet tiles the input and one image per style (the default prompt here).
        try tool(["contact-sheet", "--model", model, input, dir + "/sheet.png"])
        let sheet = try PNGCodec.read(path: dir + "/sheet.png")
        let source = try PNGCodec.read(path: input)
        XCTAssertEqual(sheet.width, 2 * source.width)
        XCTAssertEqual(sheet.height, source.height)
        XCTAssertEqual(Array(sheet.pixels[0..<(source.width * 3)]), Array(source.pixels[0..<(source.width * 3)]), "first tile is the input")
        let inspect = try tool(["inspect", model, "--size", "32x32"])
        XCTAssertTrue(inspect.out.contains("concat-channels") && inspect.out.contains("DDIMScheduler")
                      && inspect.out.contains("GFLOP at 32x32"), inspect.out)
        // The element itself, in videotestsrc ! stylize ! fakesink.
        let bench = try tool(["bench", "element", "--model", model, "--size", "40x24", "--batch", "2", "--frames", "4"])
        for field in ["4 frames through videotestsrc ! stylize ! fakesink", "fps", "p50", "p95", "chain to push",
                      "U-Net", "autoencoder encode", "tensor pool"] {
            XCTAssertTrue(bench.out.contains(field), bench.out)
        }
        let bad = try tool(["stylize", "--model", dir + "/missing", "--prompt", "x", input, dir + "/d.png"], expectSuccess: false)
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.err.contains("missing"), bad.err)
    }

    func testBenchReportsRatioToSgemmPeak() throws {
        let r = try tool(["bench", "vae-decode", "--model", Self.fixtures + "/vae/taesd_narrow16", "--batch", "2",
                          "--size", "64x48", "--repeats", "2"])
        let ratioLine = r.out.split(separator: "\n").first { $0.hasPrefix("ratio") }
        XCTAssertNotNil(ratioLine, r.out)
        let percent = ratioLine.flatMap { line in line.split(separator: " ").compactMap { Double($0.dropLast()) }.first }
        XCTAssertNotNil(percent)
        XCTAssertGreaterThan(percent ?? 0, 0)
        XCTAssertTrue(r.out.contains("GFLOP per call"))
    }

    /// bench flow needs no model; bench of a model component without --model is an error.
    func testBenchFlowTimesTheFlowWithTheSgemmPeak() throws {
        let r = try tool(["bench", "flow", "--size", "64x48", "--threads", "1"])
        for field in ["flow   64x48", "flow   32x24", "per frame", "warp   64x48", "sgemm peak"] {
            XCTAssertTrue(r.out.contains(field), r.out)
        }
        let bad = try tool(["bench", "unet"], expectSuccess: false)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.err.contains("--model"), bad.err)
    }

    func testErrorsAreOneLineAndExitNonZero() throws {
        let r = try tool(["run", "unet", "--model", dir + "/missing", "--input", "x", "--output", "y"], expectSuccess: false)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.err.contains("missing/config.json"), r.err)
        XCTAssertFalse(r.err.contains("Fatal error"), r.err)
        let bad = dir + "/bad.safetensors"
        try Data([9, 0, 0, 0, 0, 0, 0, 0, 1]).write(to: URL(fileURLWithPath: bad))
        let r2 = try tool(["run", "vae-decode", "--model", Self.fixtures + "/vae/taesd_narrow16", "--input", bad, "--output", "y"],
                          expectSuccess: false)
        XCTAssertEqual(r2.status, 1)
        XCTAssertTrue(r2.err.contains(bad), r2.err)
    }

    /// `tokenize --json` prints the ids the tokenizers library gives (fixture cases.json).
    func testTokenizeMatchesTokenizersLibrary() throws {
        struct Case: Decodable { let text: String; let ids: [Int] }
        let qwen = Self.fixtures + "/tokenizers/qwen"
        let data = try Data(contentsOf: URL(fileURLWithPath: qwen + "/cases.json"))
        let cases = try JSONDecoder().decode([Case].self, from: data)
        // A spread of cases: plain, whitespace, special tokens, non-ASCII, a leading "-".
        var picked = Array(cases.filter { !$0.text.isEmpty }.enumerated().filter { $0.offset % 150 == 0 }.map(\.element))
        picked += cases.filter { $0.text.contains("<|im_start|>") || $0.text.unicodeScalars.contains { $0.value > 0x2000 } }.prefix(2)
        picked += cases.filter { $0.text.hasPrefix("-") }.prefix(1)
        XCTAssertGreaterThanOrEqual(picked.count, 8)
        for c in picked {
            let r = try tool(["tokenize", "--tokenizer", qwen, "--json", "--", c.text])
            let ids = try JSONDecoder().decode([Int].self, from: Data(r.out.utf8))
            XCTAssertEqual(ids, c.ids, c.text)
        }
        let clip = Self.fixtures + "/tokenizers/clip"
        let text = "a photo of an astronaut riding a horse on mars"
        XCTAssertEqual(try tool(["tokenize", "--tokenizer", clip, "--json", text]).out,
                       "[49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407]\n")
        XCTAssertEqual(try tool(["tokenize", "--tokenizer", clip, "--json", "--no-special-tokens", "a photo"]).out, "[320, 1125]\n")
        // The table: one row per token with id, vocabulary form and decoded text, then the count.
        let table = try tool(["tokenize", "--tokenizer", clip, "a photo"]).out.split(separator: "\n").map(String.init)
        XCTAssertEqual(table.count, 6, table.joined(separator: "\n"))
        XCTAssertTrue(table[2].contains("320") && table[2].contains("a</w>") && table[2].contains("\"a</w>\""), table[2])
        XCTAssertEqual(table.last, "4 tokens")
        let missing = try tool(["tokenize", "--tokenizer", dir, "x"], expectSuccess: false)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.err.contains(dir + "/tokenizer.json"), missing.err)
    }

    func testHelpDocumentsEveryCommand() throws {
        let r = try tool(["--help"])
        for command in ["run", "init-random", "init-lllite", "bench", "tokenize"] { XCTAssertTrue(r.out.contains(command), r.out) }
        let run = try tool(["run", "--help"])
        for command in ["unet", "vae-encode", "vae-decode"] { XCTAssertTrue(run.out.contains(command), run.out) }
    }

    private func assertParityCLI(_ ours: Tensor, _ reference: Tensor, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(ours.shape, reference.shape, file: file, line: line)
        XCTAssertLessThanOrEqual(ours.maxAbsDifference(reference), 1e-4 * (1 + reference.maxAbs), file: file, line: line)
    }
}
