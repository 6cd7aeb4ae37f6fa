import Foundation
import StylizeCore
import StylizeModels
import XCTest

/// A batch run as concurrent lanes (`BatchLanes`) gives every item what the
/// whole-batch call gives it, adapters' per-item hooks included. Not always to the bit:
/// a smaller batch can take another convolution algorithm (Winograd wants 64 tiles).
final class BatchLaneTests: XCTestCase {
    func testLanesGiveTheWholeBatchCallsBitsWithPerItemAdapterHooks() throws {
        // sd1x_down: a batch of 3 with one control image per item, so the 2 + 1 lanes
        // each need their own items' conditioning (LLLiteHook.slicingBatch).
        let name = "sd1x_down"
        let model = try UNet2DConditionModel(directory: Fixtures.path("lllite", name, "unet"))
        let adapter = try ControlNetLLLite(file: Fixtures.path("lllite", name, "lllite.safetensors"),
                                           denoiser: model, imageDownscale: 8, blocks: .down)
        let input = try SafeTensorsFile(path: Fixtures.path("lllite", name, "input.safetensors"))
        let output = try SafeTensorsFile(path: Fixtures.path("lllite", name, "output.safetensors"))
        var inputs = DenoiserInputs(sample: Tensor.fromNCHW(try Fixtures.tensor(input, "sample")),
                                    timesteps: try input.floats("timestep"),
                                    encoderHiddenStates: try Fixtures.tensor(input, "encoder_hidden_states"))
        XCTAssertEqual(inputs.sample.n, 3)
        let conditioning = try adapter.condition(images: Tensor.fromNCHW(try Fixtures.tensor(input, "control_image")),
                                                 latentHeight: inputs.sample.h, latentWidth: inputs.sample.w)
        inputs.linearHooks = conditioning.hooks(multiplier: try input.floats("control_multiplier")[0])

        let whole = try ThreadBudget.serially { try model(inputs) }
        let lanes = try ThreadBudget.with(threads: 2) { try BatchLanes.denoise(model, inputs) }
        XCTAssertEqual(lanes.shape, whole.shape)
        XCTAssertLessThan(lanes.maxAbsDifference(whole), 1e-5, "lanes and the whole batch differ")
        assertParity(lanes.toNCHW(), try Fixtures.tensor(output, "sample"), "lllite/\(name) in lanes")

        // One item alone matches its row of the batch too (the slice of a per-item hook).
        let last = try ThreadBudget.serially { try model(inputs.slicingBatch(2..<3)) }
        XCTAssertLessThan(last.maxAbsDifference(whole.batchItems([2])), 1e-5)
        // Items slices of a per-item hook really differ: the lanes could not pass by reusing
        // the first item's conditioning.
        let wrong = try ThreadBudget.serially { () -> Tensor in
            var first = inputs.slicingBatch(0..<1)
            first.sample = inputs.sample.batchItems([2])
            return try model(first)
        }
        XCTAssertGreaterThan(wrong.maxAbsDifference(whole.batchItems([2])), 1e-3)
    }

    func testAutoencoderInLanesMatchesTheWholeBatch() throws {
        let vae = try AutoencoderTiny(directory: Fixtures.path("vae", "taesd_narrow16"))
        var images = Tensor(uninitialized: [3, 32, 48, 3])
        for i in 0..<images.count { images.data[i] = sin(Float(i) * 0.37) }
        let whole = try ThreadBudget.serially { try vae.encode(images) }
        let lanes = try ThreadBudget.with(threads: 2) { try BatchLanes.map(images) { try vae.encode($0) } }
        XCTAssertEqual(lanes.shape, whole.shape)
        XCTAssertLessThan(lanes.maxAbsDifference(whole), 1e-5)
        let decoded = try ThreadBudget.with(threads: 2) { try BatchLanes.map(whole) { try vae.decode($0) } }
        XCTAssertLessThan(decoded.maxAbsDifference(try ThreadBudget.serially { try vae.decode(whole) }), 1e-5)
    }

    func testSlicingKeepsSharedInputsAndSlicesPerItemOnes() {
        let inputs = DenoiserInputs(sample: Tensor(zeros: [4, 2, 2, 3]), timesteps: [1, 2, 3, 4],
                                    encoderHiddenStates: Tensor(zeros: [1, 5, 6]), textEmbeds: Tensor(zeros: [4, 7]))
        let s = inputs.slicingBatch(1..<3)
        XCTAssertEqual(s.sample.shape, [2, 2, 2, 3])
        XCTAssertEqual(s.timesteps, [2, 3])
        XCTAssertEqual(s.encoderHiddenStates.shape, [1, 5, 6], "a context shared by the batch stays shared")
        XCTAssertEqual(s.textEmbeds?.shape, [2, 7])
        XCTAssertEqual(DenoiserInputs(sample: Tensor(zeros: [4, 1, 1, 1]), timesteps: [9],
                                      encoderHiddenStates: Tensor(zeros: [4, 5, 6])).slicingBatch(3..<4).timesteps, [9])
    }
}
