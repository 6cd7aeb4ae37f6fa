import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport

/// The control adapter as the engine applies it: stylize.json's `control`, name
/// resolution, per-frame conditioning, the periodic refresh, background switching and
/// failures that leave the stream running.
final class ControlAdapterTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws {
        folder = try TinyModelFolder.make(mode: .sdedit, scheduler: "DDIMScheduler",
                                          schedulerExtra: #", "prediction_type": "sample""#)
        let model = try StylizeModel(path: folder)
        try FileManager.default.createDirectory(atPath: folder + "/controlnet_lllite", withIntermediateDirectories: true)
        try ControlNetLLLite.randomWeights(denoiser: model.denoiser, imageDownscale: model.codec.downscale, blocks: .all,
                                           condEmbDim: 8, mlpDim: 8, seed: 11)
            .write(to: folder + "/controlnet_lllite/test.safetensors")
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
        super.tearDown()
    }

    private func engine(_ control: String, interval: Int = 8, strength: Float = 1,
                        events: Locked<[ControlEvent]>? = nil) throws -> (StylizeEngine, StylizeSettings) {
        let e = try StylizeEngine(model: StylizeModel(path: folder))
        var s = StylizeSettings()
        s.prompt = "oil painting"
        s.refreshInterval = 0
        s.steps = 2
        s.control = control
        s.controlRefreshInterval = interval
        s.controlStrength = strength
        if let events { e.onControlEvent = { ev in events.withLock { $0.append(ev) } } }
        try e.start(settings: s)
        return (e, s)
    }

    private func frame(_ t: Tensor, _ i: Int) -> Tensor { Tensor(shape: [1, t.h, t.w, t.c], data: Array(t.data[(i * t.h * t.w * t.c)..<((i + 1) * t.h * t.w * t.c)])) }

    func testStylizeJSONControlIsParsedAndCheckedNamingTheKey() throws {
        let json = #"{"control": {"weights": "controlnet_lllite/e.safetensors", "name": "edges", "multiplier": 0.7, "#
            + #""blocks": "down+mid", "refresh_interval": 4, "image": "edges", "edges": {"low": 0.2, "high": 0.5}}}"#
        let c = try StylizeConfig(data: Data(json.utf8), file: "stylize.json", textEncoderDefaults: ConditioningSpec()).control
        XCTAssertEqual(c?.weights, "controlnet_lllite/e.safetensors")
        XCTAssertEqual(c?.name, "edges")
        XCTAssertEqual(c?.multiplier, 0.7)
        XCTAssertEqual(c?.blocks, .downMid)
        XCTAssertEqual(c?.refreshInterval, 4)
        XCTAssertEqual(c?.image, .edges)
        XCTAssertEqual([c?.edges.low, c?.edges.high], [0.2, 0.5])
        for (body, fragments) in [(#"{"control": {"weights": "a", "blocks": "sideways"}}"#, ["blocks", "sideways"]),
                                  (#"{"control": {"multiplier": 1}}"#, ["(control)", "weights"]),
                                  (#"{"control": {"weights": "a", "refresh_interval": 0}}"#, ["refresh_interval"]),
                                  (#"{"control": {"weights": "a", "image": "depth"}}"#, ["image", "depth"]),
                                  (#"{"control": "a"}"#, ["control", "object"])] {
            XCTAssertThrowsError(try StylizeConfig(data: Data(body.utf8), file: "stylize.json", textEncoderDefaults: ConditioningSpec())) { e in
                for f in fragments { XCTAssertTrue("\(e)".contains(f), "\(e) lacks \(f)") }
            }
        }
    }

    func testControlResolvesNamesAndStrengthZeroIsExactlyOff() throws {
        let frames = TinyModelFolder.frames(2, 32, 48)
        let events = Locked<[ControlEvent]>([])
        let (withControl, s) = try engine("test", events: events)
        defer { withControl.stop() }
        let controlled = try StylizeEngine.processWaitingForPrompt(withControl, frames, settings: s)
        XCTAssertEqual(events.withLock { $0 }, [.activated(path: folder + "/controlnet_lllite/test.safetensors", frame: 0)])
        let (plain, p) = try engine("")
        defer { plain.stop() }
        let reference = try StylizeEngine.processWaitingForPrompt(plain, frames, settings: p)
        XCTAssertGreaterThan(controlled.maxAbsDifference(reference), 1e-3, "the adapter changes the output")
        let (off, o) = try engine("test", strength: 0)
        defer { off.stop() }
        XCTAssertEqual(try StylizeEngine.processWaitingForPrompt(off, frames, settings: o).maxAbsDifference(reference), 0)
    }

    /// Interval 1: each frame is conditioned by its own image, as if processed alone.
    func testAtIntervalOneEveryFrameConditionsItself() throws {
        let frames = TinyModelFolder.frames(3, 32, 32, seed: 9)
        let (e, s) = try engine("test", interval: 1)
        defer { e.stop() }
        let batch = try StylizeEngine.processWaitingForPrompt(e, frames, settings: s)
        for i in 0..<3 {
            let alone = try e.process(frame(frames, i), settings: s)
            XCTAssertLessThan(frame(batch, i).maxAbsDifference(alone), 1e-4, "frame \(i)")
        }
    }

    /// Interval 3: the conditioning of a refresh batch's newest frame is kept for the next
    /// two batches, then re-computed from the newest frame of the fourth.
    func testConditioningIsKeptBetweenRefreshesFromTheNewestFrame() throws {
        // Alternately dark and bright frames, so neighbours' control images differ clearly.
        var f = TinyModelFolder.frames(8, 32, 32, seed: 4)
        for i in 0..<f.count { f.data[i] = f.data[i] * 0.2 + ((i / (32 * 32 * 3)) % 2 == 0 ? -0.7 : 0.7) }
        func pair(_ a: Int, _ b: Int) -> Tensor {
            Tensor(shape: [2, 32, 32, 3], data: frame(f, a).data.array + frame(f, b).data.array)
        }
        /// Output of `batch` in a stream whose first batch was frames 0 and 1 (the vision-aware
        /// prompt encoding sees a batch's newest frame, so streams compared must share it).
        func afterFirstPair(_ batch: Tensor, interval: Int) throws -> Tensor {
            let (e, s) = try engine("test", interval: interval)
            defer { e.stop() }
            _ = try e.process(pair(0, 1), settings: s)
            return try e.process(batch, settings: s)
        }
        let (e, s) = try engine("test", interval: 3)
        defer { e.stop() }
        _ = try e.process(pair(0, 1), settings: s)        // refresh from frame 1
        let second = try e.process(pair(2, 3), settings: s)
        _ = try e.process(pair(4, 5), settings: s)
        let fourth = try e.process(pair(6, 7), settings: s)  // refresh from frame 7
        let (ref, rs) = try engine("test", interval: 3)
        defer { ref.stop() }
        let byFrame1 = try ref.process(pair(2, 1), settings: rs)
        XCTAssertLessThan(frame(second, 0).maxAbsDifference(frame(byFrame1, 0)), 1e-4, "frame 2 conditioned by frame 1")
        let ownImage = try afterFirstPair(pair(2, 3), interval: 1)
        XCTAssertGreaterThan(frame(second, 0).maxAbsDifference(frame(ownImage, 0)), 1e-4, "not by its own image")
        let byThemselves = try afterFirstPair(pair(6, 7), interval: 1)
        XCTAssertLessThan(frame(fourth, 1).maxAbsDifference(frame(byThemselves, 1)), 1e-4, "refreshed from frame 7")
        XCTAssertGreaterThan(frame(fourth, 0).maxAbsDifference(frame(byThemselves, 0)), 1e-4, "frame 6 by frame 7's image")
    }

    func testAChangeLoadsInTheBackgroundAndSwitchesAtABatch() throws {
        let frames = TinyModelFolder.frames(2, 32, 32)
        let events = Locked<[ControlEvent]>([])
        let (e, initial) = try engine("", events: events)
        var s = initial
        defer { e.stop() }
        _ = try StylizeEngine.processWaitingForPrompt(e, frames, settings: s)
        s.control = "test"
        let deadline = Date(timeIntervalSinceNow: 10)
        while events.withLock({ $0.isEmpty }) && Date() < deadline {
            _ = try e.process(frames, settings: s)
        }
        guard case .activated(let path, let frame)? = events.withLock({ $0.first }) else {
            return XCTFail("no activation: \(events.withLock { $0 })")
        }
        XCTAssertTrue(path.hasSuffix("controlnet_lllite/test.safetensors"))
        XCTAssertEqual(frame % 2, 0, "switched at a batch's first frame")
        XCTAssertGreaterThanOrEqual(frame, 2, "the first batch ran without it")
        // Back to none: a removal at a batch boundary.
        s.control = ""
        events.withLock { $0.removeAll() }
        while events.withLock({ $0.isEmpty }) && Date() < deadline { _ = try e.process(frames, settings: s) }
        guard case .removed(let at)? = events.withLock({ $0.first }) else { return XCTFail("\(events.withLock { $0 })") }
        XCTAssertEqual(at % 2, 0)
    }

    func testABadFileIsReportedAndTheStreamRunsWithoutAnAdapter() throws {
        let frames = TinyModelFolder.frames(2, 32, 32)
        let events = Locked<[ControlEvent]>([])
        let (e, s) = try engine("/nonexistent/bad.safetensors", events: events)
        defer { e.stop() }
        let out = try StylizeEngine.processWaitingForPrompt(e, frames, settings: s)
        guard case .failed(let path, let message)? = events.withLock({ $0.first }) else { return XCTFail("\(events.withLock { $0 })") }
        XCTAssertEqual(path, "/nonexistent/bad.safetensors")
        XCTAssertTrue(message.contains("/nonexistent/bad.safetensors"), message)
        let (plain, p) = try engine("")
        defer { plain.stop() }
        XCTAssertEqual(try StylizeEngine.processWaitingForPrompt(plain, frames, settings: p).maxAbsDifference(out), 0)
    }

    func testPreviousOutputAndEdgeSourcesRun() throws {
        for image in ["previous-output", "edges"] {
            let url = URL(fileURLWithPath: folder + "/stylize.json")
            var json = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
            json["control"] = ["weights": "controlnet_lllite/test.safetensors", "image": image, "refresh_interval": 1]
            try JSONSerialization.data(withJSONObject: json).write(to: url)
            let model = try StylizeModel(path: folder)
            XCTAssertEqual(model.config.control?.image.rawValue, image)
            let e = StylizeEngine(model: model)
            var s = StylizeSettings()
            s.refreshInterval = 0
            s.control = e.modelDefaults.control
            s.controlRefreshInterval = e.modelDefaults.controlRefreshInterval
            XCTAssertEqual(s.control, "controlnet_lllite/test.safetensors")
            try e.start(settings: s)
            defer { e.stop() }
            let frames = TinyModelFolder.frames(2, 32, 32)
            let first = try e.process(frames, settings: s)
            let second = try e.process(frames, settings: s)
            XCTAssertFalse(first.data.contains { !$0.isFinite }, image)
            if image == "previous-output" {
                // The second batch is conditioned by the first batch's newest output, not the frame.
                XCTAssertGreaterThan(second.maxAbsDifference(first), 1e-4, image)
            } else {
                XCTAssertLessThan(second.maxAbsDifference(first), 1e-5, image)
            }
        }
    }

    func testEdgeMapMarksAStepAndNothingElse() {
        var t = Tensor(uninitialized: [1, 16, 20, 3])
        for y in 0..<16 { for x in 0..<20 { for c in 0..<3 { t.data[((y * 20) + x) * 3 + c] = x < 10 ? -1 : 1 } } }
        let edges = edgeMap(t)
        var columns = Set<Int>()
        for y in 0..<16 { for x in 0..<20 where edges.data[((y * 20) + x) * 3] > 0 { columns.insert(x) } }
        XCTAssertFalse(columns.isEmpty)
        XCTAssertTrue(columns.isSubset(of: [9, 10]), "edges at \(columns.sorted())")
        XCTAssertTrue(edges.data.allSatisfy { $0 == 1 || $0 == -1 })
        XCTAssertEqual(edgeMap(Tensor(zeros: [1, 8, 8, 3])).data.array, Array(repeating: -1, count: 192), "flat: no edges")
    }
}
