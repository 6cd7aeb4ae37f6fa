import Foundation
import StylizeModels
import XCTest

final class UNetParityTests: XCTestCase {
    /// Every committed U-Net fixture: same config, weights and inputs as diffusers.
    func testAllUNetFixturesMatchDiffusers() throws {
        let cases = Fixtures.cases("unet")
        XCTAssertGreaterThanOrEqual(cases.count, 6, "expected ≥ 6 U-Net fixtures in \(Fixtures.path("unet"))")
        for name in cases {
            do { try checkCase(name) } catch { XCTFail("unet/\(name): \(error)") }
        }
    }

    private func checkCase(_ name: String) throws {
        let dir = Fixtures.path("unet", name)
        let model = try UNet2DConditionModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let expected = try Fixtures.tensor(SafeTensorsFile(path: dir + "/output.safetensors"), "sample")
        func optional(_ key: String) throws -> Tensor? {
            input.entries[key] == nil ? nil : try Fixtures.tensor(input, key)
        }
        let inputs = UNetInputs(
            sample: Tensor.fromNCHW(try Fixtures.tensor(input, "sample")),
            timesteps: try input.floats("timestep"),
            encoderHiddenStates: try Fixtures.tensor(input, "encoder_hidden_states"),
            timestepCond: try optional("timestep_cond"),
            textEmbeds: try optional("text_embeds"),
            timeIds: try optional("time_ids"))
        let out = try model(inputs).toNCHW()
        assertParity(out, expected, "unet/\(name)")
    }

    func testFixtureSetCoversEveryRequiredOption() throws {
        // Guards the fixture set itself: if a case is dropped, coverage silently shrinks.
        var seen = Set<String>()
        for name in Fixtures.cases("unet") {
            let c = try UNet2DConditionConfig(file: Fixtures.path("unet", name, "config.json"))
            if c.useLinearProjection { seen.insert("linear_projection") } else { seen.insert("conv_projection") }
            if c.midBlockType == nil { seen.insert("no_mid_block") }
            if c.inChannels == 8 { seen.insert("8_channel_conv_in") }
            if c.encoderHidDim != nil { seen.insert("text_proj") }
            if c.additionEmbedType == "text_time" { seen.insert("text_time") }
            if Set(c.numAttentionHeads).count > 1 { seen.insert("per_block_heads") }
            if c.transformerLayersPerBlock.contains(where: { $0 > 1 }) { seen.insert("deep_transformers") }
            if c.downBlockTypes.contains("DownBlock2D") { seen.insert("DownBlock2D") }
            if c.timeCondProjDim != nil { seen.insert("time_cond_proj") }
        }
        XCTAssertEqual(seen, ["linear_projection", "conv_projection", "no_mid_block", "8_channel_conv_in", "text_proj",
                              "text_time", "per_block_heads", "deep_transformers", "DownBlock2D", "time_cond_proj"])
    }
}

/// The Linear input hook, the seam adapters such as ControlNet-LLLite attach through.
final class LinearInputHookTests: XCTestCase {
    private struct AddConstant: LinearInputHook {
        let value: Float
        func callAsFunction(_ x: Tensor) -> Tensor {
            var y = x
            y.data.withUnsafeMutableBufferPointer { for i in $0.indices { $0[i] += value } }
            return y
        }
    }

    private struct Recorder: LinearInputHook {
        let seen: Locked<[Int]>
        func callAsFunction(_ x: Tensor) -> Tensor {
            seen.update { $0.append(x.count) }
            return x
        }
    }

    final class Locked<T>: @unchecked Sendable {   // guarded by `lock`
        private let lock = NSLock()
        private var value: T
        init(_ v: T) { value = v }
        func update(_ body: (inout T) -> Void) { lock.withLock { body(&value) } }
        var current: T { lock.withLock { value } }
    }

    private func fixture() throws -> (UNet2DConditionModel, UNetInputs) {
        let dir = Fixtures.path("unet", "sd15_tiny")
        let model = try UNet2DConditionModel(directory: dir)
        let input = try SafeTensorsFile(path: dir + "/input.safetensors")
        let inputs = UNetInputs(sample: Tensor.fromNCHW(try Fixtures.tensor(input, "sample")),
                                timesteps: try input.floats("timestep"),
                                encoderHiddenStates: try Fixtures.tensor(input, "encoder_hidden_states"))
        return (model, inputs)
    }

    /// No hooks, hooks on names no Linear has, and identity hooks all give the plain output
    /// bit for bit; a hook on attn1.to_q of the first down block's first transformer runs
    /// once per call with that Linear's input and changes the output.
    func testHooksAttachByLinearNameAndCostNothingWhenAbsent() throws {
        let (model, plain) = try fixture()
        let reference = try model(plain)
        var unknown = plain
        unknown.linearHooks = LinearInputHooks(["down_blocks.0.attentions.0.no_such_linear": AddConstant(value: 1)])
        XCTAssertEqual(try model(unknown).data, reference.data)

        let name = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
        let seen = Locked<[Int]>([])
        var recorded = plain
        recorded.linearHooks = LinearInputHooks([name: Recorder(seen: seen)])
        XCTAssertEqual(try model(recorded).data, reference.data, "an identity hook changed the output")
        XCTAssertEqual(seen.current.count, 1, "\(name) is hooked once per call")

        var shifted = plain
        shifted.linearHooks = LinearInputHooks([name: AddConstant(value: 0.5)])
        XCTAssertGreaterThan(try model(shifted).maxAbsDifference(reference), 1e-4, "the hook's input change reached the output")
    }
}
