import Foundation
import XCTest
@testable import StylizeEngine
import StylizeCore
import StylizeModels
import StylizeTestSupport

/// The temporal adapter: the previous output warped onto each frame by optical flow
/// (PreviousOutputWarp), stylize.json's `temporal`, the `temporal` switch, the first
/// batch's fallback to the frames and the reset at a discontinuity.
final class TemporalAdapterTests: XCTestCase {
    /// A smooth colour texture sampled at (x − dx, y − dy): the pattern moved by (dx, dy).
    /// `frequency` < 1 stretches it (a frame whose flow runs on a shrunk grid needs a
    /// pattern that the shrinking does not alias).
    private func texture(height h: Int, width w: Int, dx: Float = 0, dy: Float = 0, phase: Float = 0,
                         frequency: Float = 1) -> Tensor {
        var t = Tensor(uninitialized: [1, h, w, 3])
        for y in 0..<h {
            for x in 0..<w {
                let (u, v) = (frequency * (Float(x) - dx), frequency * (Float(y) - dy))
                for c in 0..<3 {
                    let value = 0.45 * sin(0.31 * u + 0.17 * v + Float(c) + phase) + 0.35 * cos(0.13 * u - 0.27 * v + 2 * Float(c))
                    t.data[(y * w + x) * 3 + c] = max(-1, min(1, value))
                }
            }
        }
        return t
    }

    func testWarpCarriesThePreviousOutputAlongAKnownTranslation() {
        let (h, w, dx, dy) = (64, 64, 3, 2)
        let previousInput = texture(height: h, width: w)
        let current = texture(height: h, width: w, dx: Float(dx), dy: Float(dy))
        // An output that differs from its input but is aligned with it.
        let previousOutput = texture(height: h, width: w, phase: 1.3)
        var warp = PreviousOutputWarp()
        warp.keep(input: previousInput, output: previousOutput, decoded: previousOutput)
        let images = warp.images(for: current)
        let expected = texture(height: h, width: w, dx: Float(dx), dy: Float(dy), phase: 1.3)
        var error: Float = 0
        var count = 0
        for y in 8..<(h - 8) {
            for x in 8..<(w - 8) {
                for c in 0..<3 {
                    let i = (y * w + x) * 3 + c
                    error += abs(images.data[i] - expected.data[i])
                    count += 1
                }
            }
        }
        XCTAssertLessThan(error / Float(count), 0.02, "the interior is the previous output moved by (\(dx), \(dy))")
        XCTAssertGreaterThan(current.maxAbsDifference(expected), 0.5, "the output differs from the frame: the test can tell them apart")
        // The strip the motion uncovered comes from outside the previous frame: the frame itself.
        for y in 8..<(h - 8) {
            for x in 0..<2 {
                for c in 0..<3 {
                    let i = (y * w + x) * 3 + c
                    XCTAssertEqual(images.data[i], current.data[i], "uncovered pixel (\(x), \(y))")
                }
            }
        }
    }

    /// The blend moves the decoder's output (any channel count: RGB or the affine head's
    /// maps) towards the warped previous one where the flow is trusted, the frame's own
    /// output elsewhere; the working size may be smaller than the padded one.
    func testBlendMixesTheWarpedPreviousDecoderOutputWhereTheFlowIsTrusted() {
        let (h, w, dx, dy) = (64, 64, 3, 2)
        func maps(_ phase: Float, dx: Float = 0, dy: Float = 0) -> Tensor {
            let a = texture(height: h, width: w, dx: dx, dy: dy, phase: phase)
            let b = texture(height: h, width: w, dx: dx, dy: dy, phase: phase + 2)
            var t = Tensor(uninitialized: [1, h, w, 6])
            for p in 0..<(h * w) { for k in 0..<3 { t.data[p * 6 + k] = a.data[p * 3 + k]; t.data[p * 6 + 3 + k] = b.data[p * 3 + k] } }
            return t
        }
        var warp = PreviousOutputWarp()
        warp.keep(input: texture(height: h, width: w), output: texture(height: h, width: w, phase: 1.3), decoded: maps(0.7))
        var decoded = maps(2.9)
        let own = decoded
        var expected = maps(0.7, dx: Float(dx), dy: Float(dy))
        _ = warp.images(for: texture(height: h, width: w, dx: Float(dx), dy: Float(dy)))
        warp.blend(&decoded, alpha: 0.75)
        var error: Float = 0
        var count = 0
        for y in 8..<(h - 8) {
            for x in 8..<(w - 8) {
                for k in 0..<6 {
                    let i = (y * w + x) * 6 + k
                    expected.data[i] = 0.75 * expected.data[i] + 0.25 * own.data[i]
                    error += abs(decoded.data[i] - expected.data[i])
                    count += 1
                }
            }
        }
        XCTAssertLessThan(error / Float(count), 0.02)
        for y in 8..<(h - 8) {
            for k in 0..<6 { XCTAssertEqual(decoded.data[(y * w) * 6 + k], own.data[(y * w) * 6 + k], "uncovered: the frame's own") }
        }
        // Within a batch the blend runs along the frames: frame 1 (the same picture as
        // frame 0, other maps) moves towards frame 0's blended maps.
        var pair = PreviousOutputWarp()
        pair.keep(input: texture(height: h, width: w), output: texture(height: h, width: w, phase: 1.3), decoded: maps(0.7))
        let moved = texture(height: h, width: w, dx: Float(dx), dy: Float(dy))
        var two = Tensor(uninitialized: [2, h, w, 6])
        let (m0, m1) = (maps(2.9), maps(4.1))
        two.data.replaceSubrange(0..<(h * w * 6), with: m0.data)
        two.data.replaceSubrange((h * w * 6)..<(2 * h * w * 6), with: m1.data)
        var both = Tensor(uninitialized: [2, h, w, 3])
        both.data.replaceSubrange(0..<(h * w * 3), with: moved.data)
        both.data.replaceSubrange((h * w * 3)..<(2 * h * w * 3), with: moved.data)
        _ = pair.images(for: both)
        pair.blend(&two, alpha: 0.75)
        var pairError: Float = 0
        for y in 8..<(h - 8) {
            for x in 8..<(w - 8) {
                for k in 0..<6 {
                    let i = (y * w + x) * 6 + k
                    XCTAssertEqual(two.data[i], decoded.data[i], accuracy: 1e-4, "frame 0 as alone")
                    pairError += abs(two.data[h * w * 6 + i] - (0.75 * two.data[i] + 0.25 * m1.data[i]))
                }
            }
        }
        XCTAssertLessThan(pairError / Float(count), 0.01, "frame 1 follows frame 0's blended output")
        // No flows for this batch (a first batch): nothing changes.
        var first = PreviousOutputWarp()
        var untouched = maps(2.9)
        first.blend(&untouched, alpha: 1)
        XCTAssertEqual(untouched.data.array, own.data.array)
        _ = first.images(for: texture(height: h, width: w))
        first.blend(&untouched, alpha: 1)
        XCTAssertEqual(untouched.data.array, own.data.array)
    }

    /// Frame i of a batch blends with frame i − 1 along the flow between them, composed
    /// through the kept input both were matched with: here the picture moves by (3, 2)
    /// per frame, on a 128² frame whose flows run on the grid shrunk by 2.
    func testBlendAlongTheBatchFollowsTheMotionBetweenFrames() {
        let (h, w, dx, dy): (Int, Int, Float, Float) = (128, 128, 3, 2)
        var warp = PreviousOutputWarp()
        warp.keep(input: texture(height: h, width: w, frequency: 0.5), output: texture(height: h, width: w, phase: 1.3, frequency: 0.5),
                  decoded: texture(height: h, width: w, phase: 0.7, frequency: 0.5))
        var frames = Tensor(uninitialized: [2, h, w, 3])
        var decoded = Tensor(uninitialized: [2, h, w, 3])
        for i in 0..<2 {
            let shift = Float(i + 1)
            frames.data.replaceSubrange((i * h * w * 3)..<((i + 1) * h * w * 3),
                                        with: texture(height: h, width: w, dx: shift * dx, dy: shift * dy, frequency: 0.5).data)
            decoded.data.replaceSubrange((i * h * w * 3)..<((i + 1) * h * w * 3),
                                         with: texture(height: h, width: w, dx: shift * dx, dy: shift * dy, phase: 2.9 + shift, frequency: 0.5).data)
        }
        let own = decoded
        _ = warp.images(for: frames)
        warp.blend(&decoded, alpha: 0.75)
        let plane = h * w * 3
        var (error, unmoved, count): (Float, Float, Int) = (0, 0, 0)
        for y in 16..<(h - 16) {
            for x in 16..<(w - 16) {
                // Frame 0's blended output at the point frame 1's pixel came from (bilinear).
                let (sx, sy) = (Float(x) - dx, Float(y) - dy)
                let (x0, y0) = (Int(sx.rounded(.down)), Int(sy.rounded(.down)))
                let (fx, fy) = (sx - Float(x0), sy - Float(y0))
                for c in 0..<3 {
                    func b0(_ xx: Int, _ yy: Int) -> Float { decoded.data[(yy * w + xx) * 3 + c] }
                    let carried = (1 - fy) * ((1 - fx) * b0(x0, y0) + fx * b0(x0 + 1, y0))
                        + fy * ((1 - fx) * b0(x0, y0 + 1) + fx * b0(x0 + 1, y0 + 1))
                    let i = plane + (y * w + x) * 3 + c
                    error += abs(decoded.data[i] - (0.75 * carried + 0.25 * own.data[i]))
                    unmoved += abs(decoded.data[i] - (0.75 * b0(x, y) + 0.25 * own.data[i]))
                    count += 1
                }
            }
        }
        XCTAssertLessThan(error / Float(count), 0.02, "frame 1 follows frame 0's blended output moved by (\(dx), \(dy))")
        XCTAssertGreaterThan(unmoved / Float(count), 5 * error / Float(count), "the motion matters: the test can tell")
    }

    /// An affine head's output is blended at the frame's size: the flows found on the
    /// 64² working frames, enlarged to the 128² frame, carry the previous output (moved by
    /// (4, 2) frame pixels, (2, 1) working pixels) onto the new one.
    func testOutputBlendAtTheFrameSizeFollowsTheWorkingSizeFlow() {
        let (h, w, H, W): (Int, Int, Int, Int) = (64, 64, 128, 128)
        let (dx, dy): (Float, Float) = (4, 2)
        var warp = PreviousOutputWarp()
        warp.keep(input: texture(height: h, width: w), output: texture(height: h, width: w, phase: 1.3),
                  decoded: texture(height: h, width: w, phase: 1.3),
                  frame: texture(height: H, width: W, phase: 1.3, frequency: 0.5))
        _ = warp.images(for: texture(height: h, width: w, dx: dx / 2, dy: dy / 2))
        var output = texture(height: H, width: W, dx: dx, dy: dy, phase: 2.9, frequency: 0.5)
        let own = output
        let carried = texture(height: H, width: W, dx: dx, dy: dy, phase: 1.3, frequency: 0.5)
        let unmovedPrevious = texture(height: H, width: W, phase: 1.3, frequency: 0.5)
        warp.blend(output: &output, alpha: 0.75, workingHeight: h, workingWidth: w)
        var (error, unmoved, count): (Float, Float, Int) = (0, 0, 0)
        for y in 16..<(H - 16) {
            for x in 16..<(W - 16) {
                for c in 0..<3 {
                    let i = (y * W + x) * 3 + c
                    error += abs(output.data[i] - (0.75 * carried.data[i] + 0.25 * own.data[i]))
                    unmoved += abs(output.data[i] - (0.75 * unmovedPrevious.data[i] + 0.25 * own.data[i]))
                    count += 1
                }
            }
        }
        XCTAssertLessThan(error / Float(count), 0.02, "the previous output, moved by (\(dx), \(dy)), blended in")
        XCTAssertGreaterThan(unmoved / Float(count), 5 * error / Float(count), "the motion matters: the test can tell")
        // Without a kept output at the frame's size (an RGB head's stream) nothing changes.
        var plain = PreviousOutputWarp()
        plain.keep(input: texture(height: h, width: w), output: texture(height: h, width: w, phase: 1.3),
                   decoded: texture(height: h, width: w, phase: 1.3))
        _ = plain.images(for: texture(height: h, width: w, dx: dx / 2, dy: dy / 2))
        var untouched = own
        plain.blend(output: &untouched, alpha: 0.75, workingHeight: h, workingWidth: w)
        XCTAssertEqual(untouched.data.array, own.data.array)
    }

    func testWithoutAPreviousOutputOrAfterASizeChangeTheFramesAreTheImages() {
        let frames = TinyModelFolder.frames(3, 32, 40)
        var warp = PreviousOutputWarp()
        XCTAssertEqual(warp.images(for: frames).data.array, frames.data.array, "a stream's first batch")
        warp.keep(input: texture(height: 16, width: 16), output: texture(height: 16, width: 16, phase: 1),
                  decoded: texture(height: 16, width: 16, phase: 1))
        XCTAssertEqual(warp.images(for: frames).data.array, frames.data.array, "another size")
        warp.keep(input: texture(height: 32, width: 40), output: texture(height: 32, width: 40, phase: 1),
                  decoded: texture(height: 32, width: 40, phase: 1))
        XCTAssertNotEqual(warp.images(for: frames).data.array, frames.data.array)
        warp.reset()
        XCTAssertEqual(warp.images(for: frames).data.array, frames.data.array, "after a reset")
    }

    func testStylizeJSONTemporalIsParsedAndReadsOnlyThePreviousOutput() throws {
        let t = try StylizeConfig(data: Data(#"{"temporal": {"weights": "controlnet_lllite/t.safetensors", "multiplier": 0.8}}"#.utf8),
                                  file: "stylize.json", textEncoderDefaults: ConditioningSpec()).temporal
        XCTAssertEqual(t?.weights, "controlnet_lllite/t.safetensors")
        XCTAssertEqual(t?.multiplier, 0.8)
        XCTAssertEqual(t?.image, .previousOutput)
        XCTAssertEqual(t?.refreshInterval, 1, "every batch unless it says otherwise")
        XCTAssertEqual(t?.blend, 0)
        for (body, fragments) in [(#"{"temporal": {"weights": "a", "image": "edges"}}"#, ["(temporal)", "image", "edges"]),
                                  (#"{"temporal": {"multiplier": 1}}"#, ["(temporal)", "weights"]),
                                  (#"{"temporal": {"weights": "a", "blend": 1.5}}"#, ["(temporal)", "blend"]),
                                  (#"{"control": {"weights": "a", "blend": 0.5}}"#, ["(control)", "blend", "previous-output"]),
                                  (#"{"temporal": true}"#, ["temporal", "object"])] {
            XCTAssertThrowsError(try StylizeConfig(data: Data(body.utf8), file: "stylize.json", textEncoderDefaults: ConditioningSpec())) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "\(e) should name \(f)") }
            }
        }
    }

    /// The engine with a model whose stylize.json has `temporal`: the first batch is
    /// conditioned by its frames (exactly what the same adapter as a `control` reading the
    /// frame gives), later batches by the warped output; `discontinuity()` starts over and
    /// `temporal` false runs without it.
    func testFirstBatchFallsBackToTheFramesAndADiscontinuityStartsOver() throws {
        let folder = try TinyModelFolder.make(mode: .sdedit, scheduler: "DDIMScheduler",
                                              schedulerExtra: #", "prediction_type": "sample""#)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let base = try StylizeModel(path: folder)
        try FileManager.default.createDirectory(atPath: folder + "/controlnet_lllite", withIntermediateDirectories: true)
        try ControlNetLLLite.randomWeights(denoiser: base.denoiser, imageDownscale: base.codec.downscale, blocks: .down,
                                           condEmbDim: 8, mlpDim: 8, seed: 4)
            .write(to: folder + "/controlnet_lllite/temporal.safetensors")
        let url = URL(fileURLWithPath: folder + "/stylize.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        json["temporal"] = ["weights": "controlnet_lllite/temporal.safetensors"]
        json["control"] = ["weights": "controlnet_lllite/temporal.safetensors", "image": "frame", "refresh_interval": 1]
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let model = try StylizeModel(path: folder)
        let frames = TinyModelFolder.frames(2, 32, 32)
        let moved = TinyModelFolder.frames(2, 32, 32, seed: 9)

        // Every engine starts with the same batch: a vision-aware encoder's conditioning
        // comes from the first batch's frame, so outputs compare only under the same one.
        func run(_ m: StylizeModel? = nil, temporal: Bool, control: String = "", resetBeforeSecond: Bool = false) throws -> [Tensor] {
            let e = StylizeEngine(model: m ?? model)
            var s = StylizeSettings()
            s.prompt = "oil painting"
            s.refreshInterval = 0
            s.temporal = temporal
            s.control = control
            s.controlRefreshInterval = 1
            try e.start(settings: s)
            defer { e.stop() }
            let first = try e.process(frames, settings: s)
            if resetBeforeSecond { e.discontinuity() }
            return [first, try e.process(moved, settings: s)]
        }
        let temporal = try run(temporal: true)
        let asControl = try run(temporal: false, control: "controlnet_lllite/temporal.safetensors")
        let plain = try run(temporal: false)
        let reset = try run(temporal: true, resetBeforeSecond: true)
        XCTAssertLessThan(temporal[0].maxAbsDifference(asControl[0]), 1e-6, "first batch: conditioned by its own frames")
        XCTAssertGreaterThan(temporal[0].maxAbsDifference(plain[0]), 1e-4, "the adapter changes the output")
        XCTAssertGreaterThan(temporal[1].maxAbsDifference(asControl[1]), 1e-4, "the second batch reads the previous output")
        XCTAssertLessThan(reset[1].maxAbsDifference(asControl[1]), 1e-6, "after a discontinuity the frames condition again")
        // A new prompt is a new style: the first batch under it is conditioned by its
        // frames, as a stream that started with that prompt.
        let switching = StylizeEngine(model: model)
        var s = StylizeSettings()
        s.prompt = "oil painting"
        s.refreshInterval = 0
        try switching.start(settings: s)
        defer { switching.stop() }
        _ = try switching.process(frames, settings: s)
        s.prompt = "a pencil sketch"
        switching.setPrompt(s.prompt)
        let deadline = Date(timeIntervalSinceNow: 30)
        while switching.currentPrompt != s.prompt && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        let afterSwitch = try switching.process(frames, settings: s)
        let started = StylizeEngine(model: model)
        try started.start(settings: s)
        defer { started.stop() }
        XCTAssertLessThan(afterSwitch.maxAbsDifference(try started.process(frames, settings: s)), 1e-6,
                          "no pull towards the previous prompt's output")
        let withoutTemporal = try run(base, temporal: true)
        XCTAssertEqual(plain[1].maxAbsDifference(withoutTemporal[1]), 0, "temporal false: as a model without one")
    }
}
