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
