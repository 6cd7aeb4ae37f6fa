import Foundation
import XCTest
@testable import StylizeEngine
import StylizeModels
import StylizeTestSupport

/// The engine settles on the last prompt set, however prompt changes and batches
/// interleave (issue 16: the relay's stream ended on an older prompt than the last one
/// posted).
final class PromptOrderingTests: XCTestCase {
    private static let model: StylizeModel = {
        let dir = try! TinyModelFolder.make(mode: .sdedit, scheduler: "EulerAncestralDiscreteScheduler")
        return try! StylizeModel(path: dir)
    }()
    private let frames = TinyModelFolder.frames(1, 16, 16)

    private func engine(prompt: String, maxDelay: TimeInterval, seed: UInt64 = 1) throws -> (StylizeEngine, Recorder<String>) {
        // The tiny U-Net's cross-attention width.
        let e = StylizeEngine(model: Self.model, conditioningBackend: RandomDelayBackend(maxDelay: maxDelay, seed: seed, width: 64))
        let reported = Recorder<String>()
        e.onConditioningActivated = { p, _ in reported.append(p) }
        var s = StylizeSettings()
        s.prompt = prompt
        try e.start(settings: s)
        return (e, reported)
    }

    /// The element copies its settings for a batch, then a `prompt` property set lands
    /// (settings updated, setPrompt called), then the batch runs with its older copy: the
    /// copy must not undo the newer prompt.
    func testABatchsStaleSettingsCopyDoesNotUndoALaterSetPrompt() throws {
        let (engine, reported) = try engine(prompt: "first", maxDelay: 0)
        defer { engine.stop() }
        var settings = StylizeSettings()
        settings.prompt = "first"
        _ = try engine.process(frames, settings: settings)

        settings.prompt = "old"
        engine.setPrompt("old")
        let copyForTheBatch = settings
        settings.prompt = "new"
        engine.setPrompt("new")
        _ = try engine.process(frames, settings: copyForTheBatch)

        waitUntilSteady { engine.currentPrompt == "new" && reported.values.last == "new" }
        XCTAssertEqual(engine.currentPrompt, "new")
        XCTAssertEqual(reported.values.last, "new", "\(reported.values)")
        // Later batches carry the current settings and keep it.
        _ = try engine.process(frames, settings: settings)
        XCTAssertEqual(engine.currentPrompt, "new")
    }

    /// Callers that never call setPrompt (stylize-tool, apps) still change the prompt
    /// through the settings they pass, including right after a start.
    func testSettingsAloneStillChangeThePrompt() throws {
        let (engine, reported) = try engine(prompt: "first", maxDelay: 0)
        defer { engine.stop() }
        var settings = StylizeSettings()
        settings.prompt = "second"
        _ = try engine.process(frames, settings: settings)
        waitUntil { engine.currentPrompt == "second" }
        settings.prompt = "third"
        _ = try engine.process(frames, settings: settings)
        waitUntil { engine.currentPrompt == "third" && reported.values.last == "third" }
    }

    /// Several threads set the prompt the way the element does (settings stored, then
    /// setPrompt; serialized, as the relay now does, so "last" is defined) while a
    /// streaming thread runs batches with settings copies and the encoder takes random
    /// time. After the last change and the last batch, the engine settles on it.
    func testConcurrentPromptChangesWhileBatchesRunConvergeToTheLastSet() throws {
        for round in 0..<3 {
            let (engine, reported) = try engine(prompt: "p0", maxDelay: 0.01, seed: UInt64(round))
            // The element's settings and the last prompt set, under its property lock.
            var initial = StylizeSettings()
            initial.prompt = "p0"
            let element = Locked((settings: initial, last: "p0"))
            let streaming = Flag()
            let streamDone = DispatchSemaphore(value: 0)
            let failure = Recorder<Error>()
            Thread.detachNewThread { [frames] in
                while !streaming.isSet {
                    let copy = element.withLock { $0.settings }
                    do { _ = try engine.process(frames, settings: copy) } catch { failure.append(error); break }
                }
                streamDone.signal()
            }
            DispatchQueue.concurrentPerform(iterations: 3) { thread in
                for i in 0..<40 {
                    let p = "p\((thread * 5 + i * 7) % 9)"
                    element.withLock {
                        $0.settings.prompt = p
                        engine.setPrompt(p)
                        $0.last = p
                    }
                    Thread.sleep(forTimeInterval: Double.random(in: 0...0.004))
                }
            }
            streaming.set()
            streamDone.wait()
            XCTAssertTrue(failure.values.isEmpty, "\(failure.values)")
            let final = element.withLock { $0.last }
            waitUntilSteady { engine.currentPrompt == final && reported.values.last == final }
            XCTAssertEqual(engine.currentPrompt, final, "round \(round)")
            XCTAssertEqual(reported.values.last, final, "round \(round): \(reported.values.suffix(5))")
            engine.stop()
        }
    }

    /// An overlong `prompt` (the element's property has no limit) reaches the encoder cut
    /// to `ConditioningService.maxPromptBytes`.
    func testAnOverlongPromptIsTruncatedBeforeTheEncoder() throws {
        final class Recording: ConditioningBackend, @unchecked Sendable {
            let seesImages = false
            let prompts = Recorder<String>()
            func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
                for p in prompts { self.prompts.append(p) }
                return prompts.map { _ in Tensor(shape: [1, 64], data: [Float](repeating: 0.1, count: 64)) }
            }
        }
        let backend = Recording()
        let e = StylizeEngine(model: Self.model, conditioningBackend: backend)
        var s = StylizeSettings()
        s.prompt = String(repeating: "ab", count: 10_000_000)   // 20 MB
        try e.start(settings: s)
        defer { e.stop() }
        _ = try StylizeEngine.processWaitingForPrompt(e, frames, settings: s, timeout: 10)
        e.setPrompt(String(repeating: "é", count: 5000))       // 2 bytes each
        waitUntil { backend.prompts.values.count == 2 }
        let sent = backend.prompts.values
        XCTAssertEqual(sent.map(\.utf8.count), [4096, 4096])
        XCTAssertTrue(sent.first == String(repeating: "ab", count: 2048))
        XCTAssertTrue(sent.last == String(repeating: "é", count: 2048))
    }

    private func waitUntil(timeout: TimeInterval = 10, _ predicate: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !predicate() && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertTrue(predicate(), "condition not reached within \(timeout) s", file: file, line: line)
    }
}
