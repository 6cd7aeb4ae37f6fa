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
