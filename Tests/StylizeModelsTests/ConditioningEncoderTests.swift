import Foundation
import StylizeModels
import XCTest

/// Prompt templates, padding, dropping and layer selection from stylize.json, end to end
/// through the real tokenizer and encoder fixtures.
final class ConditioningEncoderTests: XCTestCase {
    let vlDir = Fixtures.path("text", "qwen3_vl")

    private func vlEncoder(_ spec: ConditioningSpec) throws -> ConditioningEncoder {
        ConditioningEncoder(tokenizer: try Tokenizer(directory: Fixtures.path("tokenizers", "qwen")),
                            encoder: try TextEncoder.load(directory: vlDir), spec: spec)
    }

    private func fixtureImages() throws -> VisionInput {
        let input = try SafeTensorsFile(path: vlDir + "/input.safetensors")
        let g = try input.int64s("image_grid_thw").map(Int.init)
        return VisionInput(pixelValues: try Fixtures.tensor(input, "pixel_values"), grids: [GridTHW(t: g[0], h: g[1], w: g[2])])
    }

    private var editSpec: ConditioningSpec {
        var spec = ConditioningSpec()
        spec.template = "<|im_start|>user\n{image}{prompt}<|im_end|>"
        return spec
    }

    /// The template with the frame inserted produces exactly the ids Qwen3VLProcessor made
    /// for the fixture, and the encoder output matches transformers.
    func testEditTemplateReproducesTheProcessorsIdsAndOutput() throws {
        let enc = try vlEncoder(editSpec)
        let tokens = try enc.tokens(prompts: ["make it an oil painting"], imageTokens: [8])
        let input = try SafeTensorsFile(path: vlDir + "/input.safetensors")
        XCTAssertEqual(tokens.ids[0], try input.int64s("input_ids").map(Int.init))
        let out = try enc.encode(tokens, images: fixtureImages())
        let expected = try Fixtures.tensor(SafeTensorsFile(path: vlDir + "/output.safetensors"), "last_hidden_state")
        assertParity(out, expected, "conditioning through the edit template")
    }

    func testPaddingDroppingAndLayerSelectionFollowTheSpec() throws {
        var spec = editSpec
        spec.padTo = 30
        spec.dropFirst = 4
        spec.hiddenLayers = [1, -1]
        let enc = try vlEncoder(spec)
        let tokens = try enc.tokens(prompts: ["make it an oil painting"], imageTokens: [8])
        XCTAssertEqual(tokens.length, 30)
        XCTAssertEqual(tokens.attentionMask?[0], Array(repeating: 1, count: 21) + Array(repeating: 0, count: 9))
        XCTAssertEqual(tokens.ids[0].suffix(9), ArraySlice(Array(repeating: 3000, count: 9)), "padded with <|endoftext|>")
        let out = try enc.encode(tokens, images: fixtureImages())
        XCTAssertEqual(out.shape, [1, 26, 128])
        XCTAssertEqual(enc.outputWidth, 128)
        // Real positions are unaffected by (causally later, masked) padding.
        let expected = try SafeTensorsFile(path: vlDir + "/output.safetensors")
        let hidden = try Fixtures.tensor(expected, "hidden_states")   // [4, 1, 21, 64]
        let last = try Fixtures.tensor(expected, "last_hidden_state") // [1, 21, 64]
        var worst: Float = 0
        for t in 0..<17 {
            for j in 0..<64 {
                worst = max(worst, abs(out.data[t * 128 + j] - hidden.data[(21 + t + 4) * 64 + j]))
                worst = max(worst, abs(out.data[t * 128 + 64 + j] - last.data[(t + 4) * 64 + j]))
            }
        }
        XCTAssertLessThan(worst, 1e-4)
    }

    func testTextOnlyTemplateDropsTheImageAndBatchesPrompts() throws {
        let enc = try vlEncoder(editSpec)
        let tokens = try enc.tokens(prompts: ["oil", "make it a pencil sketch"], imageTokens: [nil, nil])
        XCTAssertFalse(tokens.ids[0].contains(3012), "no image pads without a frame")
        XCTAssertEqual(tokens.ids[0].count, tokens.ids[1].count, "batched prompts share a length")
        XCTAssertEqual(tokens.attentionMask?[0].filter { $0 == 0 }.count, tokens.ids[1].count - (tokens.attentionMask?[0].filter { $0 == 1 }.count ?? 0))
        let out = try enc.encode(prompts: ["oil", "make it a pencil sketch"])
        XCTAssertEqual(out.shape[0], 2)
    }

    func testStableDiffusionCLIPTokensMatchCLIPTokenizerPadding() throws {
        let cases = try JSONSerialization.jsonObject(
            with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tokenizers", "clip", "cases_sd.json")))) as! [[String: Any]]
        let enc = ConditioningEncoder(tokenizer: try Tokenizer(directory: Fixtures.path("tokenizers", "clip")),
                                      encoder: try TextEncoder.load(directory: Fixtures.path("text", "clip_text_a")),
                                      spec: .stableDiffusionCLIP)
        for c in cases {
            let tokens = try enc.tokens(prompts: [c["text"] as! String], imageTokens: [nil])
            XCTAssertEqual(tokens.ids[0], c["ids"] as! [Int], c["text"] as! String)
            XCTAssertNil(tokens.attentionMask, "SD feeds CLIP no attention mask")
        }
    }

    func testSpecIsReadFromStylizeJSONWithErrorsNamingTheKey() throws {
        let json = #"{"template": "<|im_start|>{image}{prompt}", "hidden_layers": [-2], "pad_to": 256, "drop_first": 64, "image_size": [256, 320], "attention_mask": false}"#
        let spec = try ConditioningSpec(ConfigReader(data: Data(json.utf8), file: "stylize.json (text_encoder)"))
        XCTAssertEqual(spec.hiddenLayers, [-2])
        XCTAssertEqual(spec.padTo, 256)
        XCTAssertEqual(spec.dropFirst, 64)
        XCTAssertEqual(spec.imageSize?.0, 256)
        XCTAssertEqual(spec.imageSize?.1, 320)
        XCTAssertFalse(spec.attentionMask)
        for (bad, key) in [(#"{"template": "no placeholder"}"#, "template"), (#"{"pad_to": 64, "drop_first": 64}"#, "drop_first"),
                           (#"{"image_size": [256]}"#, "image_size"), (#"{"hidden_layers": []}"#, "hidden_layers")] {
            XCTAssertThrowsError(try ConditioningSpec(ConfigReader(data: Data(bad.utf8), file: "stylize.json"))) {
                XCTAssertTrue("\($0)".contains("stylize.json") && "\($0)".contains(key), "\($0)")
            }
        }
    }
}
