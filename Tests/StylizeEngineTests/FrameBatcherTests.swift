import Foundation
import XCTest
@testable import StylizeEngine

final class FrameBatcherTests: XCTestCase {
    enum Event: Equatable { case eos, segment(Int) }

    func testFullBatchesThenEOSDrainsThePartialBatchInOrder() {
        let b = FrameBatcher<Int, Event>(batchSize: 4)
        let producer = Thread {
            for i in 0..<10 { b.push(i) }
            b.push(event: .eos)
        }
        producer.start()
        var got: [FrameBatcher<Int, Event>.Item] = []
        while true {
            guard let item = b.next() else { break }
            got.append(item)
            if case .event(.eos) = item { break }
        }
        let frames = got.compactMap { if case .frames(let f) = $0 { return f }; return nil }
        XCTAssertEqual(frames, [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]])
        if case .event(let e)? = got.last { XCTAssertEqual(e, .eos) } else { XCTFail("EOS must come last") }
    }

    func testEventsStayBetweenTheFramesTheyWerePushedBetween() {
        let b = FrameBatcher<Int, Event>(batchSize: 8)
        for i in 0..<3 { b.push(i) }
        b.push(event: .segment(1))
        for i in 3..<5 { b.push(i) }
        b.push(event: .eos)
        var order: [String] = []
        for _ in 0..<4 {
            switch b.next()! {
            case .frames(let f): order.append("f\(f)")
            case .event(let e): order.append("e\(e)")
            }
        }
        XCTAssertEqual(order, ["f[0, 1, 2]", "esegment(1)", "f[3, 4]", "eeos"])
    }

    func testMaxBatchWaitReleasesAPartialBatch() {
        let b = FrameBatcher<Int, Event>(batchSize: 8, maxBatchWait: 0.05)
        b.push(1)
        b.push(2)
        let t0 = Date()
        guard case .frames(let f)? = b.next() else { return XCTFail("expected frames") }
        XCTAssertEqual(f, [1, 2])
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(t0), 0.04)
    }

    func testPushBlocksWhenFullAndFlushReleasesEveryone() {
        let b = FrameBatcher<Int, Event>(batchSize: 2)  // capacity 4
        for i in 0..<4 { XCTAssertTrue(b.push(i)) }
        let blocked = expectation(description: "blocked push returns after flush")
        var pushed = true
        Thread {
            pushed = b.push(99)  // queue full: blocks
            blocked.fulfill()
        }.start()
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertEqual(b.count, 4, "the fifth frame must wait")
        b.startFlushing()
        wait(for: [blocked], timeout: 2)
        XCTAssertFalse(pushed, "a push interrupted by FLUSH_START is dropped")
        XCTAssertNil(b.next(), "the worker sees the flush")
        XCTAssertEqual(b.count, 0)
        b.stopFlushing()
        XCTAssertTrue(b.push(5))
        b.push(event: .eos)
        guard case .frames(let f)? = b.next() else { return XCTFail() }
        XCTAssertEqual(f, [5])
    }

    func testWorkerBlockedOnAnEmptyQueueWakesOnStop() {
        let b = FrameBatcher<Int, Event>(batchSize: 2)
        let done = expectation(description: "next returns nil")
        Thread {
            XCTAssertNil(b.next())
            done.fulfill()
        }.start()
        Thread.sleep(forTimeInterval: 0.02)
        b.stop()
        wait(for: [done], timeout: 2)
        XCTAssertFalse(b.push(1))
    }

    func testStatisticsPercentilesAndRate() {
        let s = StreamStatistics(window: 10, latencySamples: 800)   // room for all 100 batches
        for i in 0..<100 {
            s.batchRan(seconds: Double(i) / 1000, frames: 1, skipped: i % 10 == 0 ? 1 : 0, now: Double(i) / 50)
            s.frameLatency(Double(i) / 100)
        }
        let snap = s.snapshot(now: 99.0 / 50)
        XCTAssertEqual(snap.fps, 50, accuracy: 0.5)
        XCTAssertEqual(snap.latencyP50, 0.5, accuracy: 0.011)
        XCTAssertEqual(snap.latencyP95, 0.94, accuracy: 0.011)
        XCTAssertEqual(snap.batchSecondsP50, 0.05, accuracy: 0.0011)
        XCTAssertEqual(snap.batchSecondsP95, 0.094, accuracy: 0.0011)
        XCTAssertEqual(snap.skippedFrames, 10)
        XCTAssertEqual(snap.framesOut, 100)
    }

    /// Only the last `latencySamples` frames count: an old slow start does not stay in p95.
    func testLatencyPercentilesForgetOldSamples() {
        let s = StreamStatistics(window: 10, latencySamples: 16)
        for _ in 0..<16 { s.frameLatency(5) }
        for _ in 0..<16 { s.frameLatency(0.25) }
        XCTAssertEqual(s.snapshot().latencyP95, 0.25)
    }

    /// A batch's slots are fixed at push: events, a batch-size change and an early release
    /// (max-batch-wait) each start the next frame at slot 0.
    func testSlotsRestartAtEveryBatchBoundary() throws {
        let b = FrameBatcher<Int, Event>(batchSize: 3)
        var slots: [Int] = []
        func push(_ i: Int) throws { XCTAssertTrue(try b.push(making: { slots.append($0.index); return i })) }
        func nextFrames() -> [Int]? {
            while let item = b.next() { if case .frames(let f) = item { return f } }
            return nil
        }
        for i in 0..<4 { try push(i) }          // 0 1 2 | 0
        b.push(event: .segment(1))              // closes [3]
        try push(4)                             // 0
        XCTAssertEqual(nextFrames(), [0, 1, 2])
        XCTAssertEqual(nextFrames(), [3])
        b.batchSize = 2                         // closes [4]
        for i in 5..<8 { try push(i) }          // 0 1 | 0
        XCTAssertEqual(slots, [0, 1, 2, 0, 0, 0, 1, 0])
        XCTAssertEqual(nextFrames(), [4])
        XCTAssertEqual(nextFrames(), [5, 6])
        b.maxBatchWait = 0.01
        XCTAssertEqual(nextFrames(), [7], "the partial batch goes after max-batch-wait")
        try push(8)
        XCTAssertEqual(slots.last, 0, "a frame after an early release starts a new batch")
    }

    /// A frame is made (converted) outside the queue's lock: other calls go on meanwhile,
    /// and the worker waits only for the batch that frame belongs to.
    func testTheWorkerWaitsForAFrameBeingMadeButTheLockStaysFree() throws {
        let b = FrameBatcher<Int, Event>(batchSize: 2)
        XCTAssertTrue(b.push(0))
        let inMake = DispatchSemaphore(value: 0), finish = DispatchSemaphore(value: 0)
        Thread { _ = try? b.push(making: { _ in inMake.signal(); finish.wait(); return 1 }) }.start()
        inMake.wait()
        XCTAssertEqual(b.count, 1, "the lock is free while a frame is made")
        let taken = expectation(description: "batch taken")
        let got = NSLock()
        var frames: [Int] = []
        Thread {
            if case .frames(let f)? = b.next() { got.withLock { frames = f } }
            taken.fulfill()
        }.start()
        Thread.sleep(forTimeInterval: 0.05)
        XCTAssertTrue(got.withLock { frames.isEmpty }, "the worker took a batch whose last frame was still being made")
        finish.signal()
        wait(for: [taken], timeout: 5)
        XCTAssertEqual(got.withLock { frames }, [0, 1])
    }

    /// A flush while a frame is being made drops it: push returns false.
    func testAFrameMadeAcrossAFlushIsDropped() throws {
        let b = FrameBatcher<Int, Event>(batchSize: 2)
        let inMake = DispatchSemaphore(value: 0), finish = DispatchSemaphore(value: 0)
        let pushed = expectation(description: "push returned")
        let result = NSLock()
        var queued: Bool?
        Thread {
            let ok = (try? b.push(making: { _ in inMake.signal(); finish.wait(); return 1 })) ?? true
            result.withLock { queued = ok }
            pushed.fulfill()
        }.start()
        inMake.wait()
        b.startFlushing()
        b.stopFlushing()
        finish.signal()
        wait(for: [pushed], timeout: 5)
        XCTAssertEqual(result.withLock { queued }, false)
        XCTAssertEqual(b.count, 0)
    }
}
