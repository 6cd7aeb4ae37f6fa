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
        defer { lock.withLock { _inFlight -= 1 } }
        lock.withLock {
            _inFlight += 1
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
    /// Encodes started and not yet returned.
    var inFlight: Int { lock.withLock { _inFlight } }
    private var _inFlight = 0
}

/// An encoder taking a random time per call (seeded), for interleaving tests.
final class RandomDelayBackend: ConditioningBackend, @unchecked Sendable {
    let seesImages = false
    let width: Int
    private let maxDelay: TimeInterval
    private let lock = NSLock()
    private var rng: SplitMix64

    init(maxDelay: TimeInterval, seed: UInt64, width: Int = 2) {
        self.maxDelay = maxDelay
        self.width = width
        rng = SplitMix64(seed: seed)
    }

    func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
        let delay = lock.withLock { Double(rng.uniform(0, 1)) } * maxDelay
        Thread.sleep(forTimeInterval: delay)
        return prompts.map { p in Tensor(shape: [1, width], data: (0..<width).map { Float(p.count + $0) }) }
    }
}

/// Values appended from any thread.
final class Recorder<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var _values: [Value] = []
    func append(_ v: Value) { lock.withLock { _values.append(v) } }
    /// A fresh array copied under the lock: handing out the shared buffer would let the
    /// next append write it in place once this copy is released, which ThreadSanitizer
    /// reports (it cannot see the Swift runtime's reference counts order the two).
    var values: [Value] { lock.withLock { _values.map { $0 } } }
}

/// A value read and changed under its own lock from any thread.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R { try lock.withLock { try body(&value) } }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var _set = false
    func set() { lock.withLock { _set = true } }
    var isSet: Bool { lock.withLock { _set } }
}

/// Waits until `predicate` has held for `steady` seconds in a row (callbacks still being
/// delivered would change it within that time); fails the test after `timeout`.
func waitUntilSteady(_ steady: TimeInterval = 0.3, timeout: TimeInterval = 10, _ predicate: () -> Bool,
                     file: StaticString = #filePath, line: UInt = #line) {
    let deadline = Date(timeIntervalSinceNow: timeout)
    var since: Date?
    while Date() < deadline {
        if predicate() {
            if let since, Date().timeIntervalSince(since) >= steady { return }
            since = since ?? Date()
        } else {
            since = nil
        }
        Thread.sleep(forTimeInterval: 0.002)
    }
    XCTFail("condition not steady for \(steady) s within \(timeout) s", file: file, line: line)
}

/// Live threads named by ConditioningService (Linux keeps the first 15 bytes of a name).
func conditioningThreadCount() -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { task in
        let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
        return comm.hasPrefix("stylize-conditi")
    }.count
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
        let activations = Recorder<String>()
        s.onActivated = { p, _ in activations.append(p) }
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
        XCTAssertEqual(activations.values.first, "a")
        XCTAssertEqual(activations.values.last, "eeeee")
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

    // MARK: ordering (issue 16)

    /// Several threads change the prompt (from a small set, so cache hits activate on the
    /// caller's thread while encodes finish on the side thread); the encoder and the
    /// activation callback take random time. Each round ends with an uncached prompt
    /// (its encode finishing at a random moment) followed by a cached one, the race that
    /// once reported the encoded prompt after the cached one. Whatever the interleaving,
    /// the active prompt and the last activation reported are the last prompt set.
    func testConcurrentPromptChangesConvergeToTheLastPromptSet() throws {
        let backend = RandomDelayBackend(maxDelay: 0.004, seed: 7)
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "p0", cacheCapacity: 64)
        let reported = Recorder<String>()
        s.onActivated = { p, _ in
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.0005))
            reported.append(p)
        }
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        // Serialized so that "the last prompt set" is well defined; the service sees
        // calls from several threads racing its side thread.
        let last = Locked("p0")
        func set(_ p: String) { last.withLock { s.setPrompt(p); $0 = p } }
        for round in 0..<25 {
            DispatchQueue.concurrentPerform(iterations: 3) { thread in
                for i in 0..<12 {
                    set("p\((round + thread * 7 + i * 3) % 6)")
                    if i % 4 == 0 { Thread.sleep(forTimeInterval: Double.random(in: 0...0.002)) }
                }
            }
            set("fresh \(round)")
            Thread.sleep(forTimeInterval: Double.random(in: 0...0.005))
            set("p\(round % 6)")   // cached: activates on this thread
            let final = last.withLock { $0 }
            waitUntilSteady(0.05) { s.current()?.prompt == final && reported.values.last == final }
            XCTAssertEqual(s.prompt, final, "round \(round)")
            XCTAssertEqual(s.current()?.prompt, final, "round \(round)")
            XCTAssertEqual(reported.values.last, final, "round \(round): activations \(reported.values.suffix(5))")
        }
    }

    /// An encode of an older prompt finishing after a newer one was set never becomes
    /// current, and the newer one still does.
    func testAnOlderPromptFinishingLateNeverReplacesTheNewer() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "a")
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        backend.delay = 0.2
        s.setPrompt("older")
        Thread.sleep(forTimeInterval: 0.05)   // "older" is being encoded
        s.setPrompt("newest")
        waitUntil { backend.callCount == 3 }
        XCTAssertNotEqual(s.current()?.prompt, "older")
        waitUntil { s.current()?.prompt == "newest" }
        XCTAssertEqual(s.cachedPrompts.suffix(2), ["older", "newest"])
    }

    // MARK: stop (issue 16)

    /// stop() during an encode waits for the side thread: when it returns the encode is
    /// over, the thread has ended, and no callback arrives afterwards.
    func testStopDuringAnEncodeJoinsTheSideThreadAndSilencesCallbacks() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "a")
        let calls = Recorder<String>()
        let stopped = Flag()
        s.onActivated = { p, _ in calls.append(stopped.isSet ? "after stop: \(p)" : p) }
        s.onError = { e in calls.append(stopped.isSet ? "after stop: \(e)" : "\(e)") }
        let threadsBefore = conditioningThreadCount()
        s.start()
        _ = try s.waitForFirst(timeout: 5)
        backend.delay = 0.5
        s.setPrompt("slow")
        waitUntil { backend.inFlight == 1 }
        s.stop()
        stopped.set()
        XCTAssertEqual(backend.inFlight, 0, "stop() returned while the side thread was still encoding")
        // The OS thread ends just after the loop signals; far sooner than the encode would.
        waitUntil(timeout: 0.2) { conditioningThreadCount() == threadsBefore }
        Thread.sleep(forTimeInterval: 0.7)
        XCTAssertFalse(calls.values.contains { $0.hasPrefix("after stop") }, "\(calls.values)")
        XCTAssertEqual(calls.values, ["a"])
    }

    /// A callback may stop the service (the element releasing an engine on error): that
    /// stop cannot wait for its own thread, returns, and the loop ends after it.
    func testStopFromACallbackReturnsAndEndsTheLoop() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "a")
        let returned = expectation(description: "stop() from the callback returned")
        s.onActivated = { _, _ in
            s.stop()
            returned.fulfill()
        }
        let threadsBefore = conditioningThreadCount()
        s.start()
        wait(for: [returned], timeout: 5)
        waitUntil(timeout: 2) { conditioningThreadCount() == threadsBefore }
        s.stop()   // again, from outside: returns at once
    }

    // MARK: prompt length (issue 16)

    /// A prompt over `maxPromptBytes` is cut, at a character boundary, before it reaches
    /// the encoder; one at the limit is kept whole.
    func testOverlongPromptsAreTruncatedBeforeEncoding() throws {
        let backend = FakeBackend()
        let s = ConditioningService(backend: backend, modelID: "m", prompt: "a")
        s.start()
        defer { s.stop() }
        _ = try s.waitForFirst(timeout: 5)
        let limit = ConditioningService.maxPromptBytes
        XCTAssertEqual(limit, 4096)
        let euros = String(repeating: "€", count: 20_000_000 / 3)   // 3 bytes each, ~20 MB
        s.setPrompt(euros)
        waitUntil { backend.callCount == 2 }
        let encoded = try XCTUnwrap(backend.calls.last?.first)
        XCTAssertEqual(encoded.utf8.count, limit / 3 * 3, "whole characters up to the limit")
        // (Booleans: a failure message holding megabytes of prompt helps nobody.)
        XCTAssertTrue(encoded == String(repeating: "€", count: limit / 3))
        XCTAssertTrue(s.prompt == encoded)
        let exact = String(repeating: "x", count: limit)
        XCTAssertTrue(ConditioningService.truncated(exact) == exact)
        XCTAssertTrue(ConditioningService.truncated(exact + "y") == exact)
        XCTAssertEqual(ConditioningService.truncated("short"), "short")
        // Initial prompts are bounded too.
        let other = ConditioningService(backend: backend, modelID: "m", prompt: exact + "tail")
        XCTAssertTrue(other.prompt == exact)
    }

    private func waitUntil(timeout: TimeInterval = 5, _ predicate: () -> Bool, file: StaticString = #filePath, line: UInt = #line) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !predicate() && Date() < deadline { Thread.sleep(forTimeInterval: 0.005) }
        XCTAssertTrue(predicate(), "condition not reached within \(timeout) s", file: file, line: line)
    }
}
