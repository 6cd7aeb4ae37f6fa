import Foundation
import StylizeModels
import XCTest

/// ControlNet-LLLite against a PyTorch reference written from kohya-ss sd-scripts'
/// `LLLiteModule` applied to diffusers' UNet2DConditionModel
/// (tools/fixtures/make_lllite_fixtures.py; Fixtures/README.md describes each case).
final class LLLiteParityTests: XCTestCase {
    private func unet(_ name: String) throws -> UNet2DConditionModel {
        try UNet2DConditionModel(directory: Fixtures.path("lllite", name, "unet"))
    }

    /// Runs one input/output pair with the adapter attached; returns (with, without, expected, expectedWithout).
    private func run(_ name: String, pair: String, blocks: LLLiteBlocks,
                     lllite: String? = nil) throws -> (Tensor, Tensor, Tensor, Tensor) {
        let model = try unet(name)
        let adapter = try ControlNetLLLite(file: lllite ?? Fixtures.path("lllite", name, "lllite.safetensors"),
                                           denoiser: model, imageDownscale: 8, blocks: blocks)
        let input = try SafeTensorsFile(path: Fixtures.path("lllite", name, "input\(pair).safetensors"))
        let output = try SafeTensorsFile(path: Fixtures.path("lllite", name, "output\(pair).safetensors"))
        func optional(_ key: String) throws -> Tensor? { input.entries[key] == nil ? nil : try Fixtures.tensor(input, key) }
        var inputs = DenoiserInputs(
            sample: Tensor.fromNCHW(try Fixtures.tensor(input, "sample")),
            timesteps: try input.floats("timestep"),
            encoderHiddenStates: try Fixtures.tensor(input, "encoder_hidden_states"),
            textEmbeds: try optional("text_embeds"), timeIds: try optional("time_ids"))
        let without = try model(inputs).toNCHW()
        let multiplier = try input.floats("control_multiplier")[0]
        let conditioning = try adapter.condition(images: Tensor.fromNCHW(try Fixtures.tensor(input, "control_image")),
                                                 latentHeight: inputs.sample.h, latentWidth: inputs.sample.w)
        XCTAssertEqual(conditioning.batch, inputs.sample.n, "one control image per sample")
        inputs.linearHooks = conditioning.hooks(multiplier: multiplier)
        let with = try model(inputs).toNCHW()
        return (with, without, try Fixtures.tensor(output, "sample"), try Fixtures.tensor(output, "sample_without"))
    }

    private func check(_ name: String, pair: String, blocks: LLLiteBlocks) throws {
        let (with, without, expected, expectedWithout) = try run(name, pair: pair, blocks: blocks)
        assertParity(without, expectedWithout, "lllite/\(name)\(pair) without the adapter")
        assertParity(with, expected, "lllite/\(name)\(pair)")
        // The comparison means something only if the adapter changes the output.
        XCTAssertGreaterThan(expected.maxAbsDifference(expectedWithout), 0.1, "\(name)\(pair): the adapter barely acts")
    }

    /// SD1.x layout, modules on the down blocks' attn1 q/k/v and attn2 q at depths 1/2/3,
    /// per-sample control images in a batch of 3, multipliers 1.0 and 0.5, sd-scripts' names.
    func testSD1xDownBlocksMatchReference() throws {
        try check("sd1x_down", pair: "", blocks: .down)
        try check("sd1x_down", pair: "_2", blocks: .down)
    }

    /// SDXL layout with sd-scripts' default set (input and middle blocks), "__" names,
    /// text_time conditioning, multiplier 0.75.
    func testSDXLInputAndMiddleBlocksMatchReference() throws {
        try check("sdxl_input_middle", pair: "", blocks: .downMid)
    }

    /// Modules whose conditioning networks are equal (tools/nano/temporal.py trains them
    /// tied: one per depth, one first conv) run each shared conv once; the reference runs
    /// every module's own copy.
    func testSharedConditioningTrunksRunOnceAndMatchReference() throws {
        try check("sd1x_shared_trunk", pair: "", blocks: .down)
        let shared = try ControlNetLLLite(file: Fixtures.path("lllite", "sd1x_shared_trunk", "lllite.safetensors"),
                                          denoiser: try unet("sd1x_shared_trunk"), imageDownscale: 8)
        XCTAssertEqual(shared.modules.count, 24)
        // conditioning1.0 for all; .2 of depths 1 and 2; .2 and .4 of depth 3.
        XCTAssertEqual(shared.distinctConditioningConvs, 5)
        let separate = try ControlNetLLLite(file: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"),
                                            denoiser: try unet("sd1x_down"), imageDownscale: 8)
        XCTAssertEqual(separate.distinctConditioningConvs, separate.modules.reduce(0) { $0 + ($1.depth == 3 ? 3 : 2) })
    }

    func testDimensionsAndDepthsAreInferredFromTheTensors() throws {
        let sd1 = try ControlNetLLLite(file: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"),
                                       denoiser: try unet("sd1x_down"), imageDownscale: 8)
        XCTAssertEqual(sd1.modules.count, 24)
        XCTAssertEqual([sd1.condEmbDim, sd1.mlpDim], [12, 10])
        XCTAssertEqual(Set(sd1.modules.map(\.depth)), [1, 2, 3])
        for m in sd1.modules {
            guard case .down(let i) = m.target.block else { return XCTFail("\(m.name) is not on a down block") }
            XCTAssertEqual(m.depth, i + 1, m.name)
        }
        XCTAssertTrue(sd1.modules.contains { $0.target.name == "down_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v" })

        let xlFile = Fixtures.path("lllite", "sdxl_input_middle", "lllite.safetensors")
        let xlUNet = try unet("sdxl_input_middle")
        let down = try ControlNetLLLite(file: xlFile, denoiser: xlUNet, imageDownscale: 8, blocks: .down)
        let downMid = try ControlNetLLLite(file: xlFile, denoiser: xlUNet, imageDownscale: 8, blocks: .downMid)
        XCTAssertEqual([down.modules.count, down.skipped.count, downMid.modules.count], [32, 8, 40])
        XCTAssertTrue(down.skipped.allSatisfy { $0.contains("middle_block") })
    }

    /// diffusers block names (`down_blocks_1_attentions_0`) load to the same modules as
    /// sd-scripts' (`input_blocks_4_1`) and give the same output.
    func testDiffusersBlockNamesAreEquivalent() throws {
        let source = try SafeTensorsFile(path: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"))
        var writer = SafeTensorsWriter()
        for name in source.entries.keys.sorted() {
            var renamed = name
            for (n, (i, j)) in [1: (0, 0), 2: (0, 1), 4: (1, 0), 5: (1, 1), 7: (2, 0), 8: (2, 1)] {
                renamed = renamed.replacingOccurrences(of: "lllite_unet_input_blocks_\(n)_1_",
                                                       with: "lllite_unet_down_blocks_\(i)_attentions_\(j)_")
            }
            XCTAssertNotEqual(renamed, name)
            writer.add(renamed, try Fixtures.tensor(source, name))
        }
        let path = NSTemporaryDirectory() + "lllite-diffusers-names-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        let (with, _, expected, _) = try run("sd1x_down", pair: "", blocks: .down, lllite: path)
        assertParity(with, expected, "lllite/sd1x_down with diffusers block names")
    }

    /// SD1.x's middle block sits at /64, which no LLLite depth reaches: refused, naming the module.
    func testModuleWhoseGridDoesNotMatchItsBlockIsAnError() throws {
        let source = try SafeTensorsFile(path: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"))
        var writer = SafeTensorsWriter()
        let prefix = "lllite_unet_input_blocks_7_1_transformer_blocks_0_attn1_to_q."
        for name in source.entries.keys where name.hasPrefix(prefix) {
            writer.add(name.replacingOccurrences(of: "input_blocks_7_1", with: "middle_block_1"), try Fixtures.tensor(source, name))
        }
        let path = NSTemporaryDirectory() + "lllite-middle-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        assertThrows(try ControlNetLLLite(file: path, denoiser: try unet("sd1x_down"), imageDownscale: 8, blocks: .all),
                     contains: [path, "lllite_unet_middle_block_1_transformer_blocks_0_attn1_to_q", "by 32", "by 64"])
        // With the default (down blocks) nothing is left to apply, which is an error too.
        assertThrows(try ControlNetLLLite(file: path, denoiser: try unet("sd1x_down"), imageDownscale: 8),
                     contains: [path, "none of its 1 modules"])
    }

    func testInconsistentTensorsAreErrorsNamingFileAndKey() throws {
        let source = try SafeTensorsFile(path: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"))
        let bad = "lllite_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_k.mid.0.weight"
        var writer = SafeTensorsWriter()
        for name in source.entries.keys.sorted() {
            let t = try Fixtures.tensor(source, name)
            writer.add(name, name == bad ? Tensor(zeros: [t.shape[0], t.shape[1] + 1]) : t)
        }
        let path = NSTemporaryDirectory() + "lllite-bad-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writer.write(to: path)
        assertThrows(try ControlNetLLLite(file: path, denoiser: try unet("sd1x_down"), imageDownscale: 8),
                     contains: [path, bad, "[10, 22]", "[10, 23]"])
        assertThrows(try ControlNetLLLite(file: path + ".missing", denoiser: try unet("sd1x_down"), imageDownscale: 8),
                     contains: [path + ".missing", "ControlNet-LLLite"])
    }

    func testControlImageOfTheWrongSizeIsAnErrorNamingTheModule() throws {
        let adapter = try ControlNetLLLite(file: Fixtures.path("lllite", "sd1x_down", "lllite.safetensors"),
                                           denoiser: try unet("sd1x_down"), imageDownscale: 8)
        assertThrows(try adapter.condition(images: Tensor(zeros: [1, 64, 96, 3]), latentHeight: 8, latentWidth: 16),
                     contains: ["control_image", "64x96", "lllite_unet_input_blocks_", "8x16 latent"])
    }
}
