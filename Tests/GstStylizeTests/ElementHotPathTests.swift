import CGStreamer
import CMallocCounter
import Foundation
import StylizeCore
import StylizeEngine
import XCTest
@testable import GstStylize

/// The per-frame path through the real element (videotestsrc ! stylize ! fakesink, the
/// embedded model, in this process) allocates nothing tensor-sized once warm: frames are
/// converted straight into their slot of a pooled batch tensor and written back from the
/// engine's output, and every buffer comes from TensorBufferPool.
final class ElementHotPathTests: XCTestCase {
    private let nano = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/nano").path

    override func setUp() {
        super.setUp()
        Gst.setUp()
        StylizeEngine.installAsDefaultFactory()
    }

    override func tearDown() {
        TestEngine.install()
        super.tearDown()
    }

    func testNoTensorSizedMallocPerFrameThroughTheElement() throws {
        // Under ASan/TSan the sanitizer's allocator replaces malloc and the counter is
        // compiled out (scripts/sanitizers.sh); in a normal build it must be active.
        if stylize_malloc_counter_sanitized() == 1 {
            throw XCTSkip("built with a sanitizer: malloc is the sanitizer's, not the counting one")
        }
        let (batch, warmup, measured) = (8, 24, 32)
        let pipeline = try InProcessPipeline(
            "videotestsrc num-buffers=\(warmup + measured) pattern=ball ! video/x-raw,format=RGBx,width=256,height=256,framerate=30/1 "
            + "! stylize model=\"\(nano)\" batch-size=\(batch) refresh-interval=0 ! fakesink name=sink sync=false")
        XCTAssertEqual(stylize_malloc_counter_active(), 1, "malloc is not the counting one; the counts below would be empty")
        var before = stylize_malloc_counter_read(), after = before
        var poolBefore = TensorBufferPool.statistics, pool = TensorBufferPool.Statistics()
        // Buffer `warmup - 1` is the last of the third batch: counting starts as the fourth
        // batch is converted and runs, and stops at its last frame's push.
        let count = try pipeline.run { i in
            if i == warmup - 1 {
                stylize_malloc_counter_reset_largest()
                before = stylize_malloc_counter_read()
                poolBefore = TensorBufferPool.statistics
            } else if i == warmup + measured - 1 {
                after = stylize_malloc_counter_read()
                pool = TensorBufferPool.statistics.since(poolBefore)
            }
        }
        XCTAssertEqual(count, warmup + measured)
        let calls = Double(after.calls - before.calls) / Double(measured)
        print("element hot path: \(calls) malloc calls per frame, \((after.bytes - before.bytes) / measured) bytes per frame, largest \(after.largest) bytes")
        // A 256² frame is 786 KB of floats: any per-frame copy into a fresh array shows here.
        XCTAssertLessThan(after.largest, 16 << 10, "a malloc of \(after.largest) bytes per frame through the element")
        XCTAssertEqual(pool.allocated, 0, "\(pool.allocatedBytes) bytes of tensors allocated after warm-up")
        XCTAssertGreaterThan(pool.reused, measured / batch * 50, "the element's path does not draw from the pool")
    }
}
