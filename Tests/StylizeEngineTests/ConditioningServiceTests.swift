import Foundation
import XCTest
@testable import StylizeEngine
import StylizeModels
#if os(Linux)
import CSystem
#endif

/// A stand-in encoder: records calls, can be slowed down or made to fail.
final class FakeBackend: ConditioningBackend, @unchecked Sendable {
    let seesImages: Bool
    var delay: TimeInterval = 0
    var failWith: Error?
    private let lock = NSLock()
    private(set) var calls: [[String]] = []
    private(set) var framesSeen: [[Bool]] = []
    private(set) var niceValues: [Int32] = []

    init(seesImages: Bool = false) { self.seesImages = seesImages }

    func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
        lock.withLock {
            calls.append(prompts)
            framesSeen.append(frames.map { $0 != nil })
            #if os(Linux)
            niceValues.append(stylize_thread_nice())
            #endif
        }
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if let failWith { throw failWith }
        // The tensor encodes the prompt's length so tests can tell results apart.
        return prompts.map { Tensor(shape: [1, 2], data: [Float($0.count), Float(frames.count)]) }
    }

    var callCount: Int { lock.withLock { calls.count } }
}

final class ConditioningServiceTests: XCTestCase {
    func testFirstConditioningIsWaitedForThenCached() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "oil painting")
        s.start()
        defer { s.stop() }
        let first = try s.waitForFirst(timeout: 5)
        XCTAssertEqual(first?.prompt, "oil painting")
        XCTAssertEqual(first?.tensor.data.first, Float("oil painting".count))
        s.setPrompt("sketch")
        waitUntil { s.current()?.prompt == "sketch" }
        let calls = backend.callCount
        s.setPrompt("oil painting")  // cached: active at once, no encoder call
        XCTAssertEqual(s.current()?.prompt, "oil painting")
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(backend.callCount, calls)
    }

    func testSlowEncoderNeverBlocksReadersAndPendingPromptsShareOneCall() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "a")
        var activations: [String] = []
        let lock = NSLock()
        s.onActivated = { p, _ in lock.withLock { activations.append(p) } }
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        backend.delay = 0.3
        s.setPrompt("bb")          // starts a slow call
        Thread.sleep(forTimeInterval: 0.05)
        for p in ["ccc", "dddd", "eeeee"] { s.setPrompt(p) }  // queue behind it
        // Readers get an answer immediately, the previous prompt's, while encoding runs.
        let t0 = Date()
        XCTAssertEqual(s.current()?.prompt, "a")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.05)
        waitUntil(timeout: 5) { s.current()?.prompt == "eeeee" }
        XCTAssertTrue(backend.calls.contains(["ccc", "dddd", "eeeee"]), "pending prompts are encoded in one batched call: \(backend.calls)")
        lock.withLock {
            XCTAssertEqual(activations.first, "a")
            XCTAssertEqual(activations.last, "eeeee")
        }
    }

    func testCacheIsBoundedLeastRecentlyUsedFirst() throws {
        let s = ConditioningService(backend: FakeBackend(), modelID: "m", prompt: "p0", cacheCapacity: 3)
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        for i in 1...4 {
            s.setPrompt("p\(i)")
            waitUntil { s.current()?.prompt == "p\(i)" }
        }
        XCTAssertEqual(s.cachedPrompts, ["p2", "p3", "p4"])
    }

    func testVisionAwareEncoderRefreshesWithTheNewestFrameEveryInterval() throws {
        let backend = FakeBackend(seesImages: true)
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "p", refreshInterval: 4)
        s.start()
        defer { s.stop() }
        let frame = RGBImage(width: 1, height: 1, pixels: [1, 2, 3])
        s.offerFrame(frame, index: 0)
        let first = try s.waitForFirst(timeout: 5)
        XCTAssertEqual(first?.frameIndex, 0)
        for i in 1...9 {
            s.offerFrame(frame, index: i)
            Thread.sleep(forTimeInterval: 0.01)
        }
        waitUntil { s.current()?.frameIndex == 8 }
        XCTAssertEqual(backend.callCount, 3, "frames 0, 4 and 8")
        XCTAssertTrue(backend.framesSeen.allSatisfy { $0 == [true] })
    }

    func testTheSideThreadRunsAtLowerPriorityThanTheCaller() throws {
        #if os(Linux)
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "p")
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        XCTAssertEqual(backend.niceValues.first, stylize_thread_nice() + 10)
        #endif
    }

    func testEncoderFailureReachesTheWaiterAndTheErrorCallback() {
        let backend = FakeBackend()
        backend.failWith = ModelError.invalidInput(name: "prompt", reason: "cannot be encoded")
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "x")
        let reported = expectation(description: "onError")
        s.onError = { _ in reported.fulfill() }
        s.start()
        defer { s.stop() }
        XCTAssertThrowsError(try s.waitForFirst(timeout: 5)) { XCTAssertTrue("\($0)".contains("cannot be encoded")) }
        wait(for: [reported], timeout: 5)
    }

    private func waitUntil(timeout: TimeInterval = 5, _ predicate: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !predicate() && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertTrue(predicate(), "condition not reached within \(timeout) s", file: file, line: line)
    }
}
