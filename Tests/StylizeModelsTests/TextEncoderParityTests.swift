import Foundation
import StylizeModels
import XCTest

/// Text encoders against transformers on the committed random-weight fixtures
/// (tools/fixtures/make_text_fixtures.py).
final class TextEncoderParityTests: XCTestCase {
    static func tokens(_ input: SafeTensorsFile) throws -> TokenBatch {
        let shape = input.entries["input_ids"]!.shape
        let ids = try input.int64s("input_ids").map(Int.init)
        let rows = (0..<shape[0]).map { Array(ids[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
        var mask: [[Int]]? = nil
        if input.entries["attention_mask"] != nil {
            let m = try input.int64s("attention_mask").map(Int.init)
            mask = (0..<shape[0]).map { Array(m[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
        }
        return TokenBatch(ids: rows, attentionMask: mask)
    }

    private func check(_ out: TextEncoderOutput, _ dir: String, pooled: Bool = false) throws {
        let expected = try SafeTensorsFile(path: dir + "/output.safetensors")
        let name = URL(fileURLWithPath: dir).lastPathComponent
        assertParity(out.lastHiddenState, try Fixtures.tensor(expected, "last_hidden_state"), "\(name) last_hidden_state")
        assertParity(out.stackedHiddenStates, try Fixtures.tensor(expected, "hidden_states"), "\(name) hidden_states")
        if pooled, let p = out.pooled {
            assertParity(p, try Fixtures.tensor(expected, "pooler_output"), "\(name) pooler_output")
        }
    }

    func testCLIPTextModelsMatchTransformers() throws {
        for name in ["clip_text_a", "clip_text_b"] {
            let dir = Fixtures.path("text", name)
            let model = try CLIPTextModel(directory: dir)
            let out = try model(Self.tokens(SafeTensorsFile(path: dir + "/input.safetensors")))
            try check(out, dir, pooled: true)
        }
    }

    func testQwen3TextModelsMatchTransformers() throws {
        for name in ["qwen3_text_a", "qwen3_text_b"] {
            let dir = Fixtures.path("text", name)
            let model = try Qwen3TextEncoder(directory: dir)
            XCTAssertGreaterThan(model.model.config.numAttentionHeads / model.model.config.numKeyValueHeads, 1, "GQA ratio")
            let out = try model(Self.tokens(SafeTensorsFile(path: dir + "/input.safetensors")))
            try check(out, dir)
        }
    }

    /// The same weights saved from Qwen3ForCausalLM (`model.` prefix, `lm_head`) load too.
    func testQwen3LoadsCausalLMCheckpoints() throws {
        let src = Fixtures.path("text", "qwen3_text_a")
        let dir = NSTemporaryDirectory() + "qwen3-causal-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/config.json", toPath: dir + "/config.json")
        try FileManager.default.copyItem(atPath: src + "/model_causallm.safetensors", toPath: dir + "/model.safetensors")
        let model = try Qwen3TextEncoder(directory: dir)
        try check(try model(Self.tokens(SafeTensorsFile(path: src + "/input.safetensors"))), src)
    }
}

/// Qwen3-VL with a non-square image: vision tower, multimodal positions, deepstack and
/// the language model against transformers.
final class Qwen3VLParityTests: XCTestCase {
    let dir = Fixtures.path("text", "qwen3_vl")

    private func visionInput(_ input: SafeTensorsFile) throws -> VisionInput {
        let grids = try input.int64s("image_grid_thw").map(Int.init)
        return VisionInput(pixelValues: try Fixtures.tensor(input, "pixel_values"),
                           grids: stride(from: 0, to: grids.count, by: 3).map { GridTHW(t: grids[$0], h: grids[$0 + 1], w: grids[$0 + 2]) })
    }

    func testVisionTowerMatchesTransformers() throws {
        let model = try Qwen3VLModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let expected = try SafeTensorsFile(path: dir + "/output.safetensors")
        let images = try visionInput(input)
        XCTAssertNotEqual(images.grids[0].h, images.grids[0].w, "the fixture image must be non-square")
        let out = try model.visual(pixelValues: images.pixelValues, grids: images.grids)
        assertParity(out.imageEmbeds, try Fixtures.tensor(expected, "image_embeds"), "qwen3_vl image_embeds")
        XCTAssertEqual(out.deepstack.count, model.config.vision.deepstackVisualIndexes.count)
        for (i, feature) in out.deepstack.enumerated() {
            assertParity(feature, try Fixtures.tensor(expected, "deepstack_\(i)"), "qwen3_vl deepstack_\(i)")
        }
    }

    func testMultimodalPositionIdsMatchGetRopeIndex() throws {
        let model = try Qwen3VLModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let expected = try SafeTensorsFile(path: dir + "/output.safetensors")
        let ours = try model.positionIds(TextEncoderParityTests.tokens(input), grids: visionInput(input).grids)
        XCTAssertEqual(ours.flatMap { $0.flatMap { $0 } }, try expected.int64s("position_ids").map(Int.init))
    }

    func testQwen3VLEncoderMatchesTransformers() throws {
        let model = try Qwen3VLModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let out = try model(TextEncoderParityTests.tokens(input), images: visionInput(input))
        let expected = try SafeTensorsFile(path: dir + "/output.safetensors")
        assertParity(out.lastHiddenState, try Fixtures.tensor(expected, "last_hidden_state"), "qwen3_vl last_hidden_state")
        assertParity(out.stackedHiddenStates, try Fixtures.tensor(expected, "hidden_states"), "qwen3_vl hidden_states")
    }

    func testImageTokenCountMismatchIsAnError() throws {
        let model = try Qwen3VLModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        var tokens = try TextEncoderParityTests.tokens(input)
        tokens.ids[0][5] = 418  // drop one image placeholder
        XCTAssertThrowsError(try model(tokens, images: visionInput(input))) { error in
            XCTAssertTrue("\(error)".contains("image tokens"), "\(error)")
        }
    }
}

final class Qwen2VLImageProcessorTests: XCTestCase {
    let dir = Fixtures.path("text", "qwen3_vl")

    func testSmartResizeFollowsTransformers() throws {
        var p = Qwen2VLImageProcessor()
        p.patchSize = 16
        p.minPixels = 4096
        p.maxPixels = 16384
        // 80×112 (h×w): round(2.5)=2 (half to even), round(3.5)=4 → 64×128.
        XCTAssertEqual(try p.smartResize(height: 80, width: 112).0, 64)
        XCTAssertEqual(try p.smartResize(height: 80, width: 112).1, 128)
        // Over budget: 512×512 → floor(512/2/32)·32 = 128.
        XCTAssertEqual(try p.smartResize(height: 512, width: 512).0, 128)
        // Under budget: 10×10 → ceil(10·6.4/32)·32 = 64.
        XCTAssertEqual(try p.smartResize(height: 10, width: 10).1, 64)
        XCTAssertThrowsError(try p.smartResize(height: 1, width: 300))
    }

    /// pixel_values and image_grid_thw against transformers' (torchvision) processor on the
    /// same non-square image. Layout and normalisation must be exact; resampling may differ
    /// by a level where the references' fixed-point rounding differs from ours.
    func testPixelValuesMatchTransformers() throws {
        let processor = try Qwen2VLImageProcessor(file: dir + "/preprocessor_config.json")
        let raw = try SafeTensorsFile(path: dir + "/image_rgb.safetensors")
        let shape = raw.entries["image"]!.shape
        let image = RGBImage(width: shape[1], height: shape[0], pixels: try raw.floats("image").map { UInt8($0) })
        let out = try processor([image])
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let expected = try Fixtures.tensor(input, "pixel_values")
        XCTAssertEqual(out.grids, [GridTHW(t: 1, h: 4, w: 8)])
        XCTAssertEqual(out.pixelValues.shape, expected.shape)
        let level: Float = 2.0 / 255 / 0.5  // one 8-bit level after (x/255 − 0.5)/0.5
        let diffs = zip(out.pixelValues.data, expected.data).map { abs($0 - $1) }
        XCTAssertLessThanOrEqual(diffs.max()!, 1.01 * level, "max difference \(diffs.max()!)")
        let offByOne = diffs.filter { $0 > 1e-5 }.count
        XCTAssertLessThan(Double(offByOne) / Double(diffs.count), 0.02, "\(offByOne) of \(diffs.count) values differ")
        print("image processor: \(offByOne) of \(diffs.count) values differ by one 8-bit level")
    }
}

final class CLIPPrefixTests: XCTestCase {
    /// SD checkpoints name CLIP weights "text_model.…"; the same weights load either way.
    func testCLIPLoadsTextModelPrefixedCheckpoints() throws {
        let src = Fixtures.path("text", "clip_text_a")
        let dir = NSTemporaryDirectory() + "clip-prefix-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/config.json", toPath: dir + "/config.json")
        let f = try SafeTensorsFile(path: src + "/model.safetensors")
        var writer = SafeTensorsWriter()
        for name in f.names {
            writer.items.append(.init(name: "text_model." + name, shape: f.entries[name]!.shape, values: .f32(try f.floats(name))))
        }
        writer.items.append(.init(name: "text_model.embeddings.position_ids", shape: [1, 77], values: .i64((0..<77).map(Int64.init))))
        try writer.write(to: dir + "/model.safetensors")
        let out = try CLIPTextModel(directory: dir)(TextEncoderParityTests.tokens(SafeTensorsFile(path: src + "/input.safetensors")))
        let expected = try SafeTensorsFile(path: src + "/output.safetensors")
        assertParity(out.lastHiddenState, try Fixtures.tensor(expected, "last_hidden_state"), "clip_text_a with text_model. prefix")
    }
}
