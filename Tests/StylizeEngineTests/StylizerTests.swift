import Foundation
import XCTest
@testable import StylizeEngine
import StylizeModels
import StylizeTestSupport

final class StylizerTests: XCTestCase {
    private func engine(_ mode: ConditioningMode, _ scheduler: String, _ extra: String = "") throws -> StylizeEngine {
        let e = try StylizeEngine(modelPath: TinyModelFolder.make(mode: mode, scheduler: scheduler, schedulerExtra: extra))
        var s = StylizeSettings()
        s.prompt = "make it an oil painting"
        try e.start(settings: s)
        return e
    }

    private func settings(steps: Int = 1, seed: UInt64 = 0, fixedNoise: Bool = true, skip: Float = 0) -> StylizeSettings {
        var s = StylizeSettings()
        s.prompt = "make it an oil painting"
        s.steps = steps
        s.seed = seed
        s.fixedNoise = fixedNoise
        s.similaritySkip = skip
        return s
    }

    func testEveryModeRestylesOddSizedFramesDeterministically() throws {
        let cases: [(ConditioningMode, String, String)] = [
            (.sdedit, "EulerAncestralDiscreteScheduler", ""),
            (.concatChannels, "LCMScheduler", ""),
            (.concatWidth, "FlowMatchEulerDiscreteScheduler", ", \"shift\": 3.0"),
        ]
        for (mode, scheduler, extra) in cases {
            let e = try engine(mode, scheduler, extra)
            defer { e.stop() }
            let frames = TinyModelFolder.frames(2, 20, 28)   // not a multiple of the model's 16
            for steps in [1, 2] {
                let a = try e.process(frames, settings: settings(steps: steps))
                let b = try e.process(frames, settings: settings(steps: steps))
                XCTAssertEqual(a.shape, frames.shape, "\(mode)")
                XCTAssertTrue(a.data.allSatisfy { $0.isFinite && $0 >= -1 && $0 <= 1 }, "\(mode)")
                XCTAssertEqual(a.data, b.data, "\(mode) \(steps) steps: same input, same output")
                XCTAssertGreaterThan(a.maxAbsDifference(frames), 0.01, "\(mode): the output is not the input")
            }
            let other = try e.process(frames, settings: settings(seed: 7))
            XCTAssertNotEqual(other.data, try e.process(frames, settings: settings()).data, "\(mode): the seed matters")
        }
    }

    func testFixedNoiseMakesFramesIndependentOfTheirBatchAndPosition() throws {
        let e = try engine(.sdedit, "EulerAncestralDiscreteScheduler")
        defer { e.stop() }
        let frames = TinyModelFolder.frames(3, 16, 16)
        let together = try e.process(frames, settings: settings())
        let per = 16 * 16 * 3
        for i in 0..<3 {
            let alone = try e.process(Tensor(shape: [1, 16, 16, 3], data: Array(frames.data[(i * per)..<((i + 1) * per)])), settings: settings())
            let slice = Array(together.data[(i * per)..<((i + 1) * per)])
            XCTAssertLessThan(zip(slice, alone.data).map { abs($0 - $1) }.max()!, 1e-4, "frame \(i)")
        }
        // Without fixed noise, the same picture at two stream positions gets different noise.
        let twice = Tensor(shape: [2, 16, 16, 3], data: Array(frames.data[0..<per]) + Array(frames.data[0..<per]))
        let varied = try e.process(twice, settings: settings(fixedNoise: false))
        XCTAssertGreaterThan(zip(varied.data[0..<per], varied.data[per..<(2 * per)]).map { abs($0 - $1) }.max()!, 1e-3)
        let fixed = try e.process(twice, settings: settings())
        // Same noise: equal up to GEMM blocking differences between batch rows.
        XCTAssertLessThan(zip(fixed.data[0..<per], fixed.data[per..<(2 * per)]).map { abs($0 - $1) }.max()!, 1e-5)
    }

    func testPromptChangesTheOutput() throws {
        let e = try engine(.sdedit, "EulerAncestralDiscreteScheduler")
        defer { e.stop() }
        let frames = TinyModelFolder.frames(1, 16, 16)
        let oil = try e.process(frames, settings: settings())
        var s = settings()
        s.prompt = "a pencil sketch"
        e.setPrompt(s.prompt)
        let deadline = Date(timeIntervalSinceNow: 10)
        var sketch = oil
        while Date() < deadline {
            sketch = try e.process(frames, settings: s)
            if sketch.data != oil.data { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        XCTAssertNotEqual(sketch.data, oil.data, "the new prompt's conditioning reaches the U-Net")
    }

    func testSimilaritySkipReusesTheLastComputedOutput() throws {
        let e = try engine(.sdedit, "EulerAncestralDiscreteScheduler")
        defer { e.stop() }
        let one = TinyModelFolder.frames(1, 16, 16)
        let per = one.count
        var nearly = one.data
        nearly[0] += 0.001
        let batch = Tensor(shape: [3, 16, 16, 3], data: one.data.array + nearly.array + TinyModelFolder.frames(1, 16, 16, seed: 9).data.array)
        let out = try e.process(batch, settings: settings(skip: 0.01))
        XCTAssertEqual(Array(out.data[0..<per]), Array(out.data[per..<(2 * per)]), "frame 1 reuses frame 0's output")
        XCTAssertNotEqual(Array(out.data[0..<per]), Array(out.data[(2 * per)..<(3 * per)]))
        XCTAssertEqual(e.statistics.snapshot().skippedFrames, 1)
        // And across batches.
        let next = try e.process(Tensor(shape: [1, 16, 16, 3], data: Array(batch.data[(2 * per)..<(3 * per)])), settings: settings(skip: 0.01))
        XCTAssertEqual(next.data.array, Array(out.data[(2 * per)..<(3 * per)]))
        XCTAssertEqual(e.statistics.snapshot().skippedFrames, 2)
    }

    /// The fixed-noise cache keeps only the current frame shape and seed (one field per
    /// denoise step): trying many seeds and sizes never grows it, and a seed coming back
    /// gets the same noise as before.
    func testFixedNoiseCacheStaysBoundedAcrossSeedsAndSizes() throws {
        let dir = try TinyModelFolder.make(mode: .sdedit, scheduler: "EulerAncestralDiscreteScheduler")
        let stylizer = Stylizer(model: try StylizeModel(path: dir))
        let conditioning = Tensor(shape: [1, 64], data: [Float](repeating: 0.1, count: 64))
        func run(_ size: Int, seed: UInt64) throws -> Tensor {
            try stylizer.process(TinyModelFolder.frames(1, size, size), conditioning: conditioning,
                                 settings: settings(steps: 2, seed: seed), frameIndices: [0])
        }
        let before = try run(16, seed: 3)
        for seed in UInt64(0)..<24 {
            for size in [16, 32] {
                _ = try run(size, seed: seed)
                // Ancestral Euler: the starting noise plus one per step.
                XCTAssertLessThanOrEqual(stylizer.fixedNoise.count, 3, "seed \(seed), \(size)x\(size)")
            }
        }
        XCTAssertEqual(try run(16, seed: 3).data, before.data)
    }

    func testStreamsShareOneLoadedModelPerFolder() throws {
        let dir = try TinyModelFolder.make(mode: .sdedit, scheduler: "EulerAncestralDiscreteScheduler")
        let a = try StylizeEngine(modelPath: dir)
        let b = try StylizeEngine(modelPath: dir + "/")
        XCTAssertTrue(a.model === b.model)
        XCTAssertEqual(ModelRegistry.loads[URL(fileURLWithPath: dir).standardizedFileURL.resolvingSymlinksInPath().path], 1)
    }

    func testBadModelFoldersFailWithTheFileNamed() throws {
        XCTAssertThrowsError(try StylizeEngine(modelPath: "/nonexistent/model")) {
            XCTAssertTrue("\($0)".contains("/nonexistent/model"), "\($0)")
        }
        // A U-Net whose input channels do not fit the conditioning mode.
        let dir = try TinyModelFolder.make(mode: .sdedit, scheduler: "EulerAncestralDiscreteScheduler")
        try #"{"conditioning_mode": "concat-channels"}"#.write(toFile: dir + "/stylize.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try StylizeModel(path: dir)) {
            XCTAssertTrue("\($0)".contains("unet/config.json") && "\($0)".contains("concat-channels"), "\($0)")
        }
        try #"{"conditioning_mode": "sideways"}"#.write(toFile: dir + "/stylize.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try StylizeModel(path: dir)) { XCTAssertTrue("\($0)".contains("sideways"), "\($0)") }
    }
}

/// An encoder made deliberately slower than a batch: wraps the model's own.
final class SlowBackend: ConditioningBackend, @unchecked Sendable {
    let inner: ConditioningBackend
    let delay: TimeInterval
    init(_ inner: ConditioningBackend, delay: TimeInterval) { (self.inner, self.delay) = (inner, delay) }
    var seesImages: Bool { inner.seesImages }
    func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
        Thread.sleep(forTimeInterval: delay)
        return try inner.encode(prompts: prompts, frames: frames)
    }
}

final class AsymmetricPathTests: XCTestCase {
    /// Prompt changes while batches flow never stall the main path: with an encoder ten
    /// times slower than a batch, the longest gap between batches stays under twice the
    /// steady interval, and the new prompt still arrives.
    func testSlowEncoderDoesNotStallOutput() throws {
        let dir = try TinyModelFolder.make(mode: .sdedit, scheduler: "EulerAncestralDiscreteScheduler")
        let model = try StylizeModel(path: dir)
        let frames = TinyModelFolder.frames(4, 32, 32)
        var s = StylizeSettings()
        s.prompt = "oil painting"
        // Steady interval first, with the model's own encoder.
        let probe = StylizeEngine(model: model)
        try probe.start(settings: s)
        _ = try probe.process(frames, settings: s)
        var steady: [Double] = []
        for _ in 0..<5 {
            let t0 = Date()
            _ = try probe.process(frames, settings: s)
            steady.append(Date().timeIntervalSince(t0))
        }
        probe.stop()
        let interval = steady.sorted()[steady.count / 2]
        let engine = StylizeEngine(model: model, conditioningBackend: SlowBackend(model.conditioning, delay: max(0.2, 10 * interval)))
        try engine.start(settings: s)
        defer { engine.stop() }
        _ = try engine.process(frames, settings: s)   // the only wait: the first conditioning
        var gaps: [Double] = []
        // Set on the conditioning thread, read here: behind a lock (ThreadSanitizer).
        let activations = Recorder<String>()
        engine.onConditioningActivated = { p, _ in if p == "pencil sketch" { activations.append(p) } }
        var last = Date()
        for i in 0..<40 {
            if i == 5 { s.prompt = "pencil sketch" }
            _ = try engine.process(frames, settings: s)
            gaps.append(Date().timeIntervalSince(last))
            last = Date()
            if !activations.values.isEmpty && i > 10 { break }
        }
        let worst = gaps.max()!
        XCTAssertLessThan(worst, max(2 * interval, interval + 0.02), "worst gap \(worst) s vs steady \(interval) s")
        let deadline = Date(timeIntervalSinceNow: 10)
        while activations.values.isEmpty && Date() < deadline { _ = try engine.process(frames, settings: s) }
        XCTAssertFalse(activations.values.isEmpty, "the slow encoder's result still becomes active")
    }
}
