import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport

/// The model at a reduced working resolution: sizes, the RGB head's guided filter, the
/// affine head, and stylize.json's `working` / `output_head`.
final class WorkingResolutionTests: XCTestCase {
    private var folders: [String] = []
    override func tearDown() {
        folders.forEach { try? FileManager.default.removeItem(atPath: $0) }
        super.tearDown()
    }

    private func engine(decoderChannels: Int = 3, extra: String = "") throws -> StylizeEngine {
        let dir = try TinyModelFolder.make(mode: .sdedit, scheduler: "DDIMScheduler",
                                           schedulerExtra: #", "prediction_type": "sample""#,
                                           decoderChannels: decoderChannels, stylizeExtra: extra)
        folders.append(dir)
        return try StylizeEngine(model: StylizeModel(path: dir))
    }

    private func run(_ e: StylizeEngine, _ frames: Tensor, scale: Float) throws -> Tensor {
        var s = StylizeSettings()
        s.refreshInterval = 0
        s.workingScale = scale
        try e.start(settings: s)
        defer { e.stop() }
        return try e.process(frames, settings: s)
    }

    func testWorkingSizeFollowsScaleCapAndMultiple() {
        var w = WorkingResolution()
        XCTAssertTrue(w.size(height: 480, width: 640, scale: 1, multiple: 32) == (480, 640))
        XCTAssertTrue(w.size(height: 480, width: 640, scale: 0.5, multiple: 32) == (224, 320), "240 rounds down to 7 × 32")
        XCTAssertTrue(w.size(height: 256, width: 256, scale: 0.5, multiple: 32) == (128, 128))
        XCTAssertTrue(w.size(height: 100, width: 60, scale: 1, multiple: 32) == (100, 60), "full size: the frame's own")
        w.maxPixels = 320 * 240
        XCTAssertTrue(w.size(height: 720, width: 1280, scale: 1, multiple: 32) == (192, 352),
                      "208 × 370 at the cap's scale, each side down to a multiple: under the cap, aspect nearly kept")
        XCTAssertTrue(w.size(height: 480, width: 640, scale: 1, multiple: 32) == (224, 320))
        XCTAssertTrue(w.size(height: 40, width: 40, scale: 0.1, multiple: 32) == (32, 32), "never below the size multiple")
    }

    /// Frame-size output at half the working size, close to the full-size run (the
    /// tiny random model's output is smooth, so the guided filter loses little).
    func testRGBHeadAtHalfScaleReturnsFrameSizedOutputNearTheFullSizeRun() throws {
        let frames = TinyModelFolder.frames(2, 64, 96)
        let e = try engine()
        let half = try run(e, frames, scale: 0.5)
        XCTAssertEqual(half.shape, frames.shape)
        XCTAssertFalse(half.data.contains { !$0.isFinite || abs($0) > 1 })
        let full = try run(try engine(), frames, scale: 1)
        XCTAssertGreaterThan(half.maxAbsDifference(full), 0, "the working size changes the computation")
        XCTAssertEqual(try run(e, frames, scale: 1).maxAbsDifference(full), 0, "scale 1 is today's path")
    }

    func testAffineHeadAppliesTheDecodersColourMapsToTheFullFrame() throws {
        let e = try engine(decoderChannels: 12, extra: #", "output_head": "affine", "working": {"scale": 0.5}"#)
        XCTAssertEqual(e.modelDefaults.workingScale, 0.5)
        let frames = TinyModelFolder.frames(1, 64, 64)
        let out = try run(e, frames, scale: e.modelDefaults.workingScale)
        XCTAssertEqual(out.shape, frames.shape)
        XCTAssertFalse(out.data.contains { !$0.isFinite || abs($0) > 1 })
    }

    /// The temporal source sees RGB at the working size whatever the head (an affine
    /// decoder's 12 channels are applied first).
    func testPreviousOutputConditioningWorksWithTheAffineHead() throws {
        let e = try engine(decoderChannels: 12, extra: #", "output_head": "affine", "working": {"scale": 0.5}"#)
        let file = folders[0] + "/lllite.safetensors"
        try ControlNetLLLite.randomWeights(denoiser: e.model.denoiser, imageDownscale: e.model.codec.downscale, blocks: .all,
                                           condEmbDim: 8, mlpDim: 8, seed: 2).write(to: file)
        let url = URL(fileURLWithPath: folders[0] + "/stylize.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        json["control"] = ["weights": "lllite.safetensors", "image": "previous-output", "refresh_interval": 1]
        try JSONSerialization.data(withJSONObject: json).write(to: url)
        let t = StylizeEngine(model: try StylizeModel(path: folders[0]))
        var s = StylizeSettings()
        s.refreshInterval = 0
        s.control = t.modelDefaults.control
        s.controlRefreshInterval = 1
        s.workingScale = 0.5
        try t.start(settings: s)
        defer { t.stop() }
        let frames = TinyModelFolder.frames(2, 48, 80)  // working 24×40, padded to 32×48
        let first = try t.process(frames, settings: s)
        let second = try t.process(frames, settings: s)
        XCTAssertEqual(second.shape, frames.shape)
        XCTAssertGreaterThan(second.maxAbsDifference(first), 0, "the second batch is conditioned by the first's output")
    }

    func testHeadAndDecoderMustAgreeAndWorkingIsChecked() throws {
        XCTAssertThrowsError(try engine(decoderChannels: 3, extra: #", "output_head": "affine""#)) { e in
            XCTAssertTrue("\(e)".contains("out_channels") && "\(e)".contains("12"), "\(e)")
        }
        XCTAssertThrowsError(try engine(extra: #", "working": {"scale": 1.5}"#)) { e in
            XCTAssertTrue("\(e)".contains("(working)") && "\(e)".contains("scale"), "\(e)")
        }
        XCTAssertThrowsError(try engine(extra: #", "output_head": "depth""#)) { e in
            XCTAssertTrue("\(e)".contains("output_head"), "\(e)")
        }
    }
}
