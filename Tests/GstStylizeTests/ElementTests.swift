import CGStreamer
import CGstCheck
import CShims
import Foundation
import XCTest
import StylizeEngine
import StylizeTestSupport
@testable import GstStylize

/// The element in a GstHarness. The assertions are about counts, order, timestamps,
/// shapes and messages, so they hold for the real engine too; the few that depend on
/// the test engine (its inversion, its batch log, its fixed worst batch time) are
/// guarded by `TestEngine.isInstalled`.
final class ElementTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    let rgb = FrameSpec(format: "RGB", width: 32, height: 24)

    // MARK: - frames, timestamps, EOS

    func testEveryFrameComesOutOnceInOrderWithItsTimestampsAndFlags() throws {
        for (count, batch) in [(37, 8), (5, 1), (10, 3), (3, 64)] {
            let h = try Harness([("batch-size", "\(batch)")])
            let log = StreamLog()
            log.attach(to: h.h.pointee.sinkpad)
            h.setCaps(rgb)
            for i in 0..<count { XCTAssertEqual(h.push(rgb, index: i), GST_FLOW_OK) }
            h.eos()
            let out = h.pull(count)
            XCTAssertEqual(out.count, count, "batch-size \(batch): \(count) frames in")
            for (i, b) in out.enumerated() {
                XCTAssertEqual(b.pointee.pts, Harness.pts(rgb, index: i))
                XCTAssertEqual(b.pointee.dts, Harness.pts(rgb, index: i) - msPerSecond)
                XCTAssertEqual(b.pointee.duration, rgb.frameDuration)
                XCTAssertEqual(b.pointee.offset, guint64(i))
                let flags = b.pointee.mini_object.flags & (GST_BUFFER_FLAG_DISCONT.rawValue | GST_BUFFER_FLAG_DELTA_UNIT.rawValue | GST_BUFFER_FLAG_MARKER.rawValue)
                XCTAssertEqual(flags, Harness.expectedFlags(i), "flags of frame \(i)")
                XCTAssertEqual(gst_buffer_get_size(b), rgb.info.size)
                gst_buffer_unref(b)
            }
            XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS), "EOS forwarded")
            XCTAssertNil(gst_harness_try_pull(h.h), "no extra frames")
            // EOS left after the last frame.
            let entries = log.entries
            XCTAssertEqual(entries.last, "eos")
            XCTAssertEqual(entries.filter { $0.hasPrefix("buffer") }.count, count)
            if TestEngine.isInstalled {
                let sizes = TestEngine.last!.batchShapes.map { $0[0] }
                var expected = Array(repeating: batch, count: count / batch)
                if count % batch != 0 { expected.append(count % batch) }
                XCTAssertEqual(sizes, expected, "batches for \(count) frames at batch-size \(batch)")
                XCTAssertEqual(TestEngine.last!.batchShapes.first, [min(batch, count), 24, 32, 3])
            }
            h.teardown()
        }
    }

    func testOutputIsTheEngineOutputWrittenIntoTheInputBuffer() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "pixel values are defined by the test engine")
        for spec in [rgb, FrameSpec(format: "BGRA", width: 8, height: 6), FrameSpec(format: "xRGB", width: 7, height: 5)] {
            let h = try Harness([("batch-size", "2")])
            h.setCaps(spec)
            h.push(spec, index: 0)
            h.push(spec, index: 1)
            let input = spec.inputBytes(index: 1)
            let out = h.pull(2)
            XCTAssertEqual(out.count, 2)
            guard out.count == 2 else { return }
            let bytes = spec.visibleBytes(out[1])
            XCTAssertEqual(bytes.count, input.count)
            // The test engine negates [-1, 1] values: 8-bit colour c becomes 255 − c
            // (alpha is written opaque; x bytes are left as they were).
            let (r, g, b, a): (Int, Int, Int, Int?) = {
                switch spec.format {
                case "RGB": return (0, 1, 2, nil)
                case "BGRA": return (2, 1, 0, 3)
                default: return (1, 2, 3, nil)  // xRGB
                }
            }()
            let bpp = spec.format == "RGB" ? 3 : 4
            var worst = 0
            for p in stride(from: 0, to: input.count, by: bpp) {
                for c in [r, g, b] { worst = max(worst, abs(Int(bytes[p + c]) - (255 - Int(input[p + c])))) }
                if let a { XCTAssertEqual(bytes[p + a], 255) }
            }
            XCTAssertLessThanOrEqual(worst, 1, spec.format)
            out.forEach { gst_buffer_unref($0) }
            h.teardown()
        }
    }

    /// `passthrough` pushes the input bytes as they came, in order, and switches back at
    /// the next batch.
    func testPassthroughPushesFramesUnchangedUntilSwitchedOff() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "the restyled pixels are defined by the test engine")
        let h = try Harness([("batch-size", "2"), ("passthrough", "true")])
        h.setCaps(rgb)
        for i in 0..<2 { h.push(rgb, index: i) }
        let passed = h.pull(2)
        XCTAssertEqual(passed.map { rgb.visibleBytes($0) }, [rgb.inputBytes(index: 0), rgb.inputBytes(index: 1)])
        XCTAssertEqual(passed.map { $0.pointee.offset }, [0, 1])
        XCTAssertTrue(TestEngine.last!.batchShapes.isEmpty, "the engine ran in passthrough")
        passed.forEach { gst_buffer_unref($0) }
        setProperty(h.element, "passthrough", "false")
        for i in 2..<4 { h.push(rgb, index: i) }
        let styled = h.pull(2)
        XCTAssertNotEqual(styled.first.map { rgb.visibleBytes($0) }, rgb.inputBytes(index: 2))
        XCTAssertEqual(TestEngine.last!.batchShapes.count, 1)
        styled.forEach { gst_buffer_unref($0) }
        h.teardown()
    }

    func testSerializedEventsStayInOrderWithTheFrames() throws {
        let h = try Harness([("batch-size", "4")])
        let log = StreamLog()
        log.attach(to: h.h.pointee.sinkpad)
        h.setCaps(rgb)
        for i in 0..<3 { h.push(rgb, index: i) }
        let custom = gst_event_new_custom(GST_EVENT_CUSTOM_DOWNSTREAM, gst_structure_new_empty("test-marker"))!
        XCTAssertTrue(h.pushEvent(custom))
        for i in 3..<5 { h.push(rgb, index: i) }
        XCTAssertTrue(h.pushEvent(gst_event_new_gap(Harness.pts(rgb, index: 5), rgb.frameDuration)))
        h.eos()
        XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS))
        h.pull(5).forEach { gst_buffer_unref($0) }
        let entries = log.entries.filter { !["stream-start", "caps", "segment"].contains($0) }
        let p = (0..<5).map { "buffer \(Harness.pts(rgb, index: $0))" }
        XCTAssertEqual(entries, [p[0], p[1], p[2], "custom-downstream", p[3], p[4], "gap", "eos"])
        let head = log.entries.prefix(3)
        XCTAssertEqual(Array(head), ["stream-start", "caps", "segment"])
        h.teardown()
    }

    // MARK: - flushing

    func testFlushInTheMiddleOfABatchDropsHeldFramesAndTheNextSegmentRuns() throws {
        let h = try Harness([("batch-size", "8")])
        h.setCaps(rgb)
        for i in 0..<5 { XCTAssertEqual(h.push(rgb, index: i), GST_FLOW_OK) }  // a partial batch, held
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_start()))
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_stop(1)))
        var segment = GstSegment()
        gst_segment_init(&segment, GST_FORMAT_TIME)
        XCTAssertTrue(h.pushEvent(gst_event_new_segment(&segment)))
        let base = 100 * second
        for i in 0..<11 { XCTAssertEqual(h.push(rgb, index: i, ptsBase: base), GST_FLOW_OK) }
        h.eos()
        let out = h.pull(11)
        XCTAssertEqual(out.map { $0.pointee.pts }, (0..<11).map { Harness.pts(rgb, index: $0, ptsBase: base) },
                       "only the new segment's frames, in order")
        out.forEach { gst_buffer_unref($0) }
        XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS))
        XCTAssertNil(gst_harness_try_pull(h.h))
        if TestEngine.isInstalled {
            XCTAssertEqual(TestEngine.last!.batchShapes.map { $0[0] }, [8, 3], "the 5 flushed frames never reached the engine")
        }
        h.teardown()
    }

    func testFlushWhileTheWorkerIsBusyAndTheChainIsBlockedDoesNotDeadlock() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "needs a batch slow enough to flush during (the test engine's delay)")
        var config = TestEngine.Config()
        config.batchDelay = 0.15
        TestEngine.config = config
        let h = try Harness([("batch-size", "4")])
        h.setCaps(rgb)
        // A producer that fills the queue (2 batches) and then blocks in the chain.
        let producerDone = expectation(description: "producer returns")
        let flows = Locked<[GstFlowReturn]>([])
        let spec = rgb
        Thread {
            for i in 0..<40 {
                let r = h.push(spec, index: i)
                flows.update { $0.append(r) }
                if r != GST_FLOW_OK { break }
            }
            producerDone.fulfill()
        }.start()
        // Wait until the worker is inside a batch and the producer is blocked.
        let first = h.pull(timeout: 10)
        XCTAssertNotNil(first)
        first.map { gst_buffer_unref($0) }
        usleep(50_000)
        let t0 = Date()
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_start()))
        wait(for: [producerDone], timeout: 5)
        XCTAssertEqual(flows.value.last, GST_FLOW_FLUSHING, "the blocked chain returned FLUSHING")
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_stop(1)))
        XCTAssertLessThan(Date().timeIntervalSince(t0), 2, "flush waited at most for the batch in progress")
        // Drop whatever was pushed before the flush finished.
        while let b = gst_harness_try_pull(h.h) { gst_buffer_unref(b) }
        var segment = GstSegment()
        gst_segment_init(&segment, GST_FORMAT_TIME)
        XCTAssertTrue(h.pushEvent(gst_event_new_segment(&segment)))
        let base = 500 * second
        for i in 0..<6 { XCTAssertEqual(h.push(rgb, index: i, ptsBase: base), GST_FLOW_OK) }
        h.eos()
        let out = h.pull(6)
        XCTAssertEqual(out.map { $0.pointee.pts }, (0..<6).map { Harness.pts(rgb, index: $0, ptsBase: base) })
        out.forEach { gst_buffer_unref($0) }
        XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS))
        h.teardown()
    }

    // MARK: - caps

    func testCapsChangeMidStreamDrainsRenegotiatesAndContinues() throws {
        let h = try Harness([("batch-size", "4")])
        let log = StreamLog()
        log.attach(to: h.h.pointee.sinkpad)
        let small = FrameSpec(format: "I420", width: 18, height: 10)
        let nv12 = FrameSpec(format: "NV12", width: 6, height: 4)
        h.setCaps(rgb)
        for i in 0..<3 { h.push(rgb, index: i) }
        h.setCaps(small)
        for i in 3..<8 { h.push(small, index: i) }
        h.setCaps(nv12)
        h.push(nv12, index: 8)
        h.eos()
        let out = h.pull(9)
        XCTAssertEqual(out.count, 9)
        let sizes = out.map { Int(gst_buffer_get_size($0)) }
        XCTAssertEqual(sizes, Array(repeating: Int(rgb.info.size), count: 3) + Array(repeating: Int(small.info.size), count: 5)
                       + [Int(nv12.info.size)])
        out.forEach { gst_buffer_unref($0) }
        XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS))
        // Each caps event went out after the frames received before it.
        let kinds = log.entries.filter { $0 == "caps" || $0.hasPrefix("buffer") }.map { $0 == "caps" ? "C" : "b" }
        XCTAssertEqual(kinds.joined(), "CbbbCbbbbbCb")
        let caps = gst_pad_get_current_caps(h.h.pointee.sinkpad)!
        var info = GstVideoInfo()
        XCTAssertTrue(gst_video_info_from_caps(&info, caps).isTrue)
        XCTAssertEqual(String(cString: gst_video_format_to_string(info.finfo.pointee.format)), "NV12")
        XCTAssertEqual(info.width, 6)
        gst_caps_unref(caps)
        if TestEngine.isInstalled {
            XCTAssertEqual(TestEngine.last!.batchShapes, [[3, 24, 32, 3], [4, 10, 18, 3], [1, 10, 18, 3], [1, 4, 6, 3]])
        }
        h.teardown()
    }

    /// The temporal adapter's state (and the similarity-skip reference) must not carry over
    /// a jump in the stream: the engine hears of every flushing seek, segment seek and caps
    /// change, in order with the frames around it.
    func testFlushSeekAndCapsChangeEachStartTheEnginesStreamStateOver() throws {
        guard TestEngine.isInstalled else { throw XCTSkip("reads the test engine's call log") }
        let h = try Harness([("batch-size", "4")])
        let small = FrameSpec(format: "RGB", width: 16, height: 8)
        func pushAndPull(_ spec: FrameSpec, _ range: Range<Int>) {
            for i in range { XCTAssertEqual(h.push(spec, index: i), GST_FLOW_OK) }
            h.pull(range.count).forEach { gst_buffer_unref($0) }
        }
        func newSegment() {
            var segment = GstSegment()
            gst_segment_init(&segment, GST_FORMAT_TIME)
            XCTAssertTrue(h.pushEvent(gst_event_new_segment(&segment)))
        }
        h.setCaps(rgb)
        pushAndPull(rgb, 0..<8)
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_start()))   // a flushing seek
        XCTAssertTrue(h.pushEvent(gst_event_new_flush_stop(1)))
        newSegment()
        pushAndPull(rgb, 0..<4)
        newSegment()                                                // a non-flushing (segment) seek
        pushAndPull(rgb, 4..<8)
        h.setCaps(small)                                            // a caps change
        pushAndPull(small, 8..<12)
        h.eos()
        XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS))
        // Consecutive notices (caps then segment at a stream's start) count once.
        let calls = TestEngine.last!.calls.reduce(into: [String]()) { list, c in
            if c != "discontinuity" || list.last != c { list.append(c) }
        }
        XCTAssertEqual(calls, ["discontinuity", "batch 4", "batch 4", "discontinuity", "batch 4", "discontinuity", "batch 4",
                               "discontinuity", "batch 4"])
        h.teardown()
    }

    func testUnsupportedCapsAreRefusedWithoutCrashing() throws {
        let h = try Harness()
        let gray = gst_caps_from_string("video/x-raw,format=GRAY8,width=8,height=8,framerate=25/1")!
        // Sticky: stored on the harness pad whatever the element says; refused on delivery.
        _ = gst_pad_push_event(h.h.pointee.srcpad, gst_event_new_caps(gray))
        gst_caps_unref(gray)
        var segment = GstSegment()
        gst_segment_init(&segment, GST_FORMAT_TIME)
        _ = gst_pad_push_event(h.h.pointee.srcpad, gst_event_new_segment(&segment))
        let b = gst_buffer_new_allocate(nil, 64, nil)!
        XCTAssertEqual(gst_harness_push(h.h, b), GST_FLOW_NOT_NEGOTIATED)
        XCTAssertNil(gst_pad_get_current_caps(h.h.pointee.sinkpad), "nothing reached downstream")
        h.teardown()
    }

    // MARK: - latency

    func testLatencyIsUpstreamPlusHeldFramesPlusProcessingBound() throws {
        let h = try Harness([("batch-size", "4")])
        gst_harness_set_upstream_latency(h.h, 10 * msPerSecond)
        h.setCaps(rgb)  // 25 fps: 40 ms frames
        let worst = TestEngine.isInstalled ? GstClockTime(TestEngine.config.reportedWorstBatch * 1e9) : 0
        let latency = gst_harness_query_latency(h.h)
        if TestEngine.isInstalled {
            XCTAssertEqual(latency, 10 * msPerSecond + 3 * 40 * msPerSecond + worst)
        } else {
            XCTAssertGreaterThanOrEqual(latency, 10 * msPerSecond + 3 * 40 * msPerSecond)
        }
        setProperty(h.element, "batch-size", "1")
        XCTAssertEqual(gst_harness_query_latency(h.h) - worst, 10 * msPerSecond)
        // max-batch-wait caps how long a frame can wait for its batch.
        setProperty(h.element, "batch-size", "16")
        setProperty(h.element, "max-batch-wait", "50")
        XCTAssertEqual(gst_harness_query_latency(h.h) - worst, 10 * msPerSecond + 50 * msPerSecond)
        // Variable framerate: only max-batch-wait bounds the wait.
        h.setCaps(FrameSpec(format: "RGB", width: 32, height: 24, fpsN: 0, fpsD: 1))
        XCTAssertEqual(gst_harness_query_latency(h.h) - worst, 10 * msPerSecond + 50 * msPerSecond)
        setProperty(h.element, "max-batch-wait", "0")
        XCTAssertEqual(gst_harness_query_latency(h.h) - worst, 10 * msPerSecond)
        h.teardown()
    }

    func testChangingBatchSizeWhilePlayingPostsALatencyMessage() throws {
        let h = try Harness([("batch-size", "4")])
        h.setCaps(rgb)
        XCTAssertEqual(h.element.pointee.current_state, GST_STATE_PLAYING)
        while let m = gst_bus_pop(h.bus) { gst_message_unref(m) }
        setProperty(h.element, "batch-size", "6")
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_LATENCY, timeout: 2))
        setProperty(h.element, "batch-size", "6")  // unchanged: no message
        XCTAssertFalse(h.waitForMessage(GST_MESSAGE_LATENCY, timeout: 0.2))
        // The new size applies to the next batch.
        for i in 0..<6 { h.push(rgb, index: i) }
        let out = h.pull(6)
        XCTAssertEqual(out.count, 6)
        out.forEach { gst_buffer_unref($0) }
        if TestEngine.isInstalled { XCTAssertEqual(TestEngine.last!.batchShapes.map { $0[0] }, [6]) }
        h.teardown()
    }

    // MARK: - properties

    func testPropertiesHaveTheirDefaultsRangesAndRoundTrip() throws {
        let e = gst_element_factory_make("stylize", nil)!
        gst_object_ref_sink(UnsafeMutableRawPointer(e))
        defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
        XCTAssertEqual(uintProperty(e, "batch-size"), 8)
        XCTAssertEqual(uintProperty(e, "steps"), 1)
        XCTAssertEqual(withProperty(e, "strength") { g_value_get_float($0) }, 0.5)
        XCTAssertEqual(withProperty(e, "seed") { g_value_get_uint64($0) }, 0)
        XCTAssertTrue(withProperty(e, "fixed-noise") { g_value_get_boolean($0) }.isTrue)
        XCTAssertEqual(uintProperty(e, "refresh-interval"), 30)
        XCTAssertEqual(uintProperty(e, "max-batch-wait"), 0)
        XCTAssertEqual(withProperty(e, "similarity-skip") { g_value_get_float($0) }, 0)
        XCTAssertEqual(uintProperty(e, "threads"), 0)
        XCTAssertEqual(stringProperty(e, "prompt"), "")
        XCTAssertEqual(stringProperty(e, "model"), Settings.defaultModelPath())
        XCTAssertTrue(stringProperty(e, "model").hasSuffix("models/nano") || ProcessInfo.processInfo.environment["STYLIZE_MODEL_DIR"] != nil)

        func uintRange(_ name: String) -> (UInt32, UInt32, UInt32) {
            let p = UnsafeMutableRawPointer(paramSpec(e, name)!).assumingMemoryBound(to: GParamSpecUInt.self)
            return (p.pointee.minimum, p.pointee.maximum, p.pointee.default_value)
        }
        XCTAssertTrue(uintRange("batch-size") == (1, 64, 8))
        XCTAssertTrue(uintRange("steps") == (1, 8, 1))
        XCTAssertTrue(uintRange("refresh-interval") == (0, 10000, 30))
        XCTAssertTrue(uintRange("max-batch-wait") == (0, 60000, 0))
        XCTAssertTrue(uintRange("threads") == (0, 64, 0))
        // GST_PARAM_MUTABLE_READY / _PLAYING (macros): 1 << (G_PARAM_USER_SHIFT + 2 / + 4).
        let playing = Int32(1) << (Int32(G_PARAM_USER_SHIFT) + 4)
        let ready = Int32(1) << (Int32(G_PARAM_USER_SHIFT) + 2)
        for name in ["model", "prompt", "batch-size", "steps", "strength", "seed", "fixed-noise",
                     "refresh-interval", "max-batch-wait", "similarity-skip"] {
            XCTAssertNotEqual(paramSpec(e, name)!.pointee.flags.rawValue & playing, 0, "\(name) is mutable in PLAYING")
        }
        XCTAssertNotEqual(paramSpec(e, "threads")!.pointee.flags.rawValue & ready, 0)
        XCTAssertEqual(paramSpec(e, "stats")!.pointee.flags.rawValue & G_PARAM_WRITABLE.rawValue, 0, "stats is read-only")

        for (name, value) in [("prompt", "ink wash"), ("model", "/tmp/some model")] {
            setProperty(e, name, value)
            XCTAssertEqual(stringProperty(e, name), value)
        }
        setProperty(e, "batch-size", "17")
        XCTAssertEqual(uintProperty(e, "batch-size"), 17)
        setProperty(e, "seed", "18446744073709551615")
        XCTAssertEqual(withProperty(e, "seed") { g_value_get_uint64($0) }, .max)
        setProperty(e, "strength", "0.25")
        XCTAssertEqual(withProperty(e, "strength") { g_value_get_float($0) }, 0.25)
        setProperty(e, "fixed-noise", "false")
        XCTAssertFalse(withProperty(e, "fixed-noise") { g_value_get_boolean($0) }.isTrue)
        setProperty(e, "model", "")
        XCTAssertEqual(stringProperty(e, "model"), Settings.defaultModelPath(), "empty model means the default")

        let stats = withProperty(e, "stats") { v -> [String] in
            let s = UnsafeMutableRawPointer(g_value_get_boxed(v)!).assumingMemoryBound(to: GstStructure.self)
            return (0..<gst_structure_n_fields(s)).map { String(cString: gst_structure_nth_field_name(s, guint($0))) }
        }
        XCTAssertEqual(stats, ["fps", "latency-p50", "latency-p95", "batch-seconds-p50", "batch-seconds-p95",
                               "encoder-seconds", "frames-out", "skipped"])
    }

    func testSettingsReachTheEngineAtTheNextBatch() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "reads the settings the test engine received")
        let h = try Harness([("batch-size", "2"), ("prompt", "first")])
        h.setCaps(rgb)
        h.push(rgb, index: 0)
        h.push(rgb, index: 1)
        h.pull(2).forEach { gst_buffer_unref($0) }
        XCTAssertEqual(TestEngine.last!.lastSettings?.prompt, "first")
        for (k, v) in [("steps", "3"), ("strength", "0.75"), ("seed", "42"), ("fixed-noise", "false"),
                       ("refresh-interval", "7"), ("similarity-skip", "0.125"), ("prompt", "second")] {
            setProperty(h.element, k, v)
        }
        h.push(rgb, index: 2)
        h.push(rgb, index: 3)
        h.pull(2).forEach { gst_buffer_unref($0) }
        let s = try XCTUnwrap(TestEngine.last!.lastSettings)
        XCTAssertEqual(s.steps, 3)
        XCTAssertEqual(s.strength, 0.75)
        XCTAssertEqual(s.seed, 42)
        XCTAssertFalse(s.fixedNoise)
        XCTAssertEqual(s.refreshInterval, 7)
        XCTAssertEqual(s.similaritySkip, 0.125)
        XCTAssertEqual(s.prompt, "second")
        XCTAssertEqual(TestEngine.last!.promptsSet.last, "second")
        h.teardown()
    }

    // MARK: - prompt changes while playing

    func testPromptSetAThousandTimesWhileFramesFlow() throws {
        var config = TestEngine.Config()
        config.conditioningDelay = 0.01
        TestEngine.config = config
        let h = try Harness([("batch-size", "4")])
        h.setCaps(rgb)

        var stressValue = GValue()
        g_value_init(&stressValue, g_type_from_name("gchararray"))
        g_value_set_string(&stressValue, "stress prompt")
        let stress = gst_harness_stress_property_start_full(h.h, "prompt", &stressValue, 100)!
        g_value_unset(&stressValue)

        let setter = expectation(description: "1000 prompts set")
        Thread {
            for i in 0..<1000 { setProperty(h.element, "prompt", "prompt \(i)") }
            setter.fulfill()
        }.start()

        let out = Locked<[GstClockTime]>([])
        let consumer = expectation(description: "frames pulled")
        let total = 204
        Thread {
            while out.value.count < total, let b = h.pull(timeout: 10) {
                out.update { $0.append(b.pointee.pts) }
                gst_buffer_unref(b)
            }
            consumer.fulfill()
        }.start()
        for i in 0..<200 { XCTAssertEqual(h.push(rgb, index: i), GST_FLOW_OK) }
        wait(for: [setter], timeout: 60)
        XCTAssertGreaterThan(gst_harness_stress_thread_stop(stress), 0)

        setProperty(h.element, "prompt", "the last prompt")
        for i in 200..<204 { XCTAssertEqual(h.push(rgb, index: i), GST_FLOW_OK) }
        h.eos()
        wait(for: [consumer], timeout: 60)
        XCTAssertEqual(out.value, (0..<total).map { Harness.pts(rgb, index: $0) }, "no frame lost or reordered")
        XCTAssertEqual(stringProperty(h.element, "prompt"), "the last prompt")
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ELEMENT, timeout: 5) { m in
            guard structureName(m) == "stylize-conditioning", let s = gst_message_get_structure(m),
                  let p = gst_structure_get_string(s, "prompt") else { return false }
            var seconds = -1.0
            return String(cString: p) == "the last prompt" && gst_structure_get_double(s, "seconds", &seconds).isTrue && seconds >= 0
        }, "a stylize-conditioning message reports the last prompt")
        if TestEngine.isInstalled {
            XCTAssertEqual(TestEngine.last!.promptsSet.last, "the last prompt")
            XCTAssertEqual(TestEngine.last!.lastSettings?.prompt, "the last prompt")
        }
        h.teardown()
    }

    func testSettingThePromptReturnsAtOnceWhileConditioningIsSlow() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "needs conditioning slowed on demand (the test engine)")
        var config = TestEngine.Config()
        config.conditioningDelay = 1.0
        TestEngine.config = config
        let h = try Harness([("batch-size", "2")])
        h.setCaps(rgb)
        let t0 = Date()
        setProperty(h.element, "prompt", "slow prompt")
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5, "set_property does not wait for the encoder")
        // Frames keep flowing while the prompt is being encoded.
        for i in 0..<4 { h.push(rgb, index: i) }
        let out = h.pull(4, timeout: 0.9)
        XCTAssertEqual(out.count, 4, "output did not wait for the conditioning")
        out.forEach { gst_buffer_unref($0) }
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ELEMENT, timeout: 3) { m in
            guard structureName(m) == "stylize-conditioning", let s = gst_message_get_structure(m),
                  let p = gst_structure_get_string(s, "prompt"), String(cString: p) == "slow prompt" else { return false }
            var seconds = 0.0
            _ = gst_structure_get_double(s, "seconds", &seconds)
            return seconds >= 0.9
        })
        h.teardown()
    }

    // MARK: - states and resources

    func testNullToPlayingToNullTwentyTimes() throws {
        let h = try Harness([("batch-size", "2")])
        for cycle in 0..<20 {
            if cycle > 0 {
                XCTAssertEqual(gst_element_set_state(h.element, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS)
                XCTAssertTrue(h.pushEvent(gst_event_new_stream_start("cycle-\(cycle)")))
            }
            h.setCaps(rgb)
            for i in 0..<3 { XCTAssertEqual(h.push(rgb, index: i), GST_FLOW_OK) }
            h.eos()
            let out = h.pull(3)
            XCTAssertEqual(out.count, 3, "cycle \(cycle)")
            out.forEach { gst_buffer_unref($0) }
            XCTAssertTrue(h.waitForEvent(GST_EVENT_EOS), "cycle \(cycle)")
            // Leave frames held in the last cycles: going to NULL must drop them cleanly.
            if cycle >= 18 { h.push(rgb, index: 3) }
            XCTAssertEqual(gst_element_set_state(h.element, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS)
        }
        XCTAssertEqual(gst_element_set_state(h.element, GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS)
        if TestEngine.isInstalled {
            let made = TestEngine.made
            XCTAssertEqual(made.count, 21, "one engine per NULL->READY")
            XCTAssertTrue(made.dropLast().allSatisfy { $0.starts == 1 && $0.stops == 1 && !$0.isRunning })
        }
        h.teardown()
    }

    func testARejectedModelFailsTheStateChangeWithAnErrorNamingThePath() throws {
        let e = gst_element_factory_make("stylize", nil)!
        gst_object_ref_sink(UnsafeMutableRawPointer(e))
        defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
        let bus = gst_bus_new()!
        defer { releaseBus(bus) }
        gst_element_set_bus(e, bus)
        let path = "/nonexistent/stylize-model"
        setProperty(e, "model", path)
        XCTAssertEqual(gst_element_set_state(e, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE)
        var text = ""
        var domain: GQuark = 0
        XCTAssertTrue(waitForBusMessage(bus, GST_MESSAGE_ERROR, timeout: 1) { m in
            (domain, _, text) = errorText(m)
            return true
        })
        XCTAssertTrue(text.contains(path), text)
        XCTAssertEqual(domain, gst_resource_error_quark())
        XCTAssertEqual(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS)
        // A loadable folder afterwards works.
        setProperty(e, "model", "/tmp/stylize-test-model")
        XCTAssertEqual(gst_element_set_state(e, GST_STATE_READY), TestEngine.isInstalled ? GST_STATE_CHANGE_SUCCESS : GST_STATE_CHANGE_FAILURE)
        XCTAssertEqual(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS)
    }

    func testAnEngineFailurePostsAnErrorAndReturnsErrorUpstream() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "needs an engine that fails on demand")
        var config = TestEngine.Config()
        config.failProcess = true
        TestEngine.config = config
        let h = try Harness([("batch-size", "2")])
        h.setCaps(rgb)
        h.push(rgb, index: 0)
        h.push(rgb, index: 1)
        var text = ""
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ERROR, timeout: 5) { m in
            text = errorText(m).message
            return true
        })
        XCTAssertTrue(text.contains("test engine told to fail"), text)
        // The stream stops: the chain reports the error upstream (and never blocks).
        var last = GST_FLOW_OK
        for i in 2..<12 {
            last = h.push(rgb, index: i)
            if last != GST_FLOW_OK { break }
        }
        XCTAssertEqual(last, GST_FLOW_ERROR)
        h.teardown()
    }

    func testChangingTheModelWhilePlayingSwitchesAtABatchBoundary() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "identifies engines by their folder")
        let h = try Harness([("batch-size", "2"), ("model", "/tmp/model-a")])
        h.setCaps(rgb)
        h.push(rgb, index: 0)
        h.push(rgb, index: 1)
        h.pull(2).forEach { gst_buffer_unref($0) }
        setProperty(h.element, "model", "/tmp/model-b")
        let deadline = Date(timeIntervalSinceNow: 5)
        while TestEngine.made.count < 2 && Date() < deadline { usleep(1000) }
        usleep(20_000)
        for i in 2..<6 { h.push(rgb, index: i) }
        let out = h.pull(4)
        XCTAssertEqual(out.count, 4)
        out.forEach { gst_buffer_unref($0) }
        let made = TestEngine.made
        XCTAssertEqual(made.map(\.path), ["/tmp/model-a", "/tmp/model-b"])
        XCTAssertEqual(made[1].batchShapes.count, 2, "batches after the switch ran on the new model")
        XCTAssertFalse(made[0].isRunning, "the old model was stopped")
        // A folder that does not load is an error message; the running model carries on.
        setProperty(h.element, "model", "/nonexistent/model-c")
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ERROR, timeout: 5) { errorText($0).message.contains("/nonexistent/model-c") })
        h.teardown()
    }

    func testADownstreamErrorReachesUpstreamOrTheBusWithoutBlocking() throws {
        // Unlinked downstream: the chain returns NOT_LINKED upstream (it never blocks on
        // the full queue behind a stopped worker)...
        let h = try Harness([("batch-size", "1")])
        h.setCaps(rgb)
        let src = gst_element_get_static_pad(h.element, "src")!
        XCTAssertTrue(gst_pad_unlink(src, h.h.pointee.sinkpad).isTrue)
        var last = GST_FLOW_OK
        for i in 0..<20 {
            last = h.push(rgb, index: i)
            if last != GST_FLOW_OK { break }
        }
        XCTAssertEqual(last, GST_FLOW_NOT_LINKED)
        h.teardown()

        // ...and when upstream has already sent EOS, the element reports it on the bus.
        let h2 = try Harness([("batch-size", "8")])
        h2.setCaps(rgb)
        let src2 = gst_element_get_static_pad(h2.element, "src")!
        XCTAssertTrue(gst_pad_unlink(src2, h2.h.pointee.sinkpad).isTrue)
        for i in 0..<3 { XCTAssertEqual(h2.push(rgb, index: i), GST_FLOW_OK) }
        h2.eos()
        var text = ""
        XCTAssertTrue(h2.waitForMessage(GST_MESSAGE_ERROR, timeout: 5) { m in
            text = errorText(m).message
            return true
        })
        XCTAssertTrue(text.contains("Internal data stream error"), text)
        h2.teardown()
        gst_object_unref(UnsafeMutableRawPointer(src))
        gst_object_unref(UnsafeMutableRawPointer(src2))
    }

    // MARK: - strides

    func testPaddedStridesGiveTheSameOutputAsPackedInput() throws {
        for spec in [FrameSpec(format: "RGB", width: 6, height: 5), FrameSpec(format: "RGBx", width: 5, height: 3),
                     FrameSpec(format: "I420", width: 10, height: 6), FrameSpec(format: "NV12", width: 7, height: 5)] {
            func run(padding: Int) throws -> [[UInt8]] {
                let h = try Harness([("batch-size", "2")])
                h.setCaps(spec)
                h.push(spec, index: 0, padding: padding)
                h.push(spec, index: 1, padding: padding)
                let out = h.pull(2)
                let bytes = out.map { spec.visibleBytes($0) }
                if padding > 0 {
                    XCTAssertNotNil(out.first.flatMap { gst_buffer_get_video_meta($0) }, "the output keeps the input's layout")
                }
                out.forEach { gst_buffer_unref($0) }
                h.teardown()
                return bytes
            }
            let packed = try run(padding: 0)
            let padded = try run(padding: 24)
            XCTAssertEqual(packed.count, 2, spec.format)
            XCTAssertEqual(packed, padded, spec.format)
            XCTAssertNotEqual(packed.first, spec.inputBytes(index: 0), "the frame was processed")
        }
    }

    func testABufferTooSmallForItsCapsIsAnErrorNotACrash() throws {
        let h = try Harness()
        h.setCaps(rgb)
        let b = gst_buffer_new_allocate(nil, 10, nil)!
        XCTAssertEqual(gst_harness_push(h.h, b), GST_FLOW_ERROR)
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ERROR, timeout: 1))
        // A video meta describing rows longer than the buffer is refused the same way.
        let bad = rgb.buffer(index: 0)
        var offsets = [gsize](repeating: 0, count: 4)
        var strides: [gint] = [4096, 0, 0, 0]
        _ = gst_buffer_add_video_meta_full(bad, GST_VIDEO_FRAME_FLAG_NONE, GST_VIDEO_FORMAT_RGB, 32, 24, 1, &offsets, &strides)
        XCTAssertEqual(gst_harness_push(h.h, bad), GST_FLOW_ERROR)
        h.teardown()
    }

    // MARK: - queries and statistics

    func testDrainQueryReturnsAfterHeldFramesWerePushed() throws {
        let h = try Harness([("batch-size", "8")])
        h.setCaps(rgb)
        for i in 0..<3 { h.push(rgb, index: i) }
        let q = gst_query_new_drain()!
        XCTAssertTrue(gst_pad_peer_query(h.h.pointee.srcpad, q).isTrue)
        gst_query_unref(q)
        XCTAssertEqual(gst_harness_buffers_in_queue(h.h), 3, "the partial batch went out before DRAIN returned")
        h.teardown()
    }

    func testMaxBatchWaitReleasesAPartialBatchWithoutEOS() throws {
        let h = try Harness([("batch-size", "8"), ("max-batch-wait", "30")])
        h.setCaps(rgb)
        for i in 0..<3 { h.push(rgb, index: i) }
        let out = h.pull(3, timeout: 5)
        XCTAssertEqual(out.map { $0.pointee.pts }, (0..<3).map { Harness.pts(rgb, index: $0) })
        out.forEach { gst_buffer_unref($0) }
        h.teardown()
    }

    func testAllocationQueryAsksUpstreamPoolsForTheHeldFrames() throws {
        let h = try Harness([("batch-size", "4")])
        h.setCaps(rgb)
        // Downstream offers a pool of 2..5 buffers.
        let pool = gst_buffer_pool_new()!
        defer { gst_object_unref(UnsafeMutableRawPointer(pool)) }
        _ = gst_pad_add_probe(h.h.pointee.sinkpad, GST_PAD_PROBE_TYPE_QUERY_DOWNSTREAM, { _, info, data in
            guard let info, let data, let q = info.pointee.data?.assumingMemoryBound(to: GstQuery.self),
                  q.pointee.type == GST_QUERY_ALLOCATION,
                  info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_PUSH.rawValue != 0  // before the handler, not after
            else { return GST_PAD_PROBE_OK }
            gst_query_add_allocation_pool(q, data.assumingMemoryBound(to: GstBufferPool.self), 1000, 2, 5)
            return GST_PAD_PROBE_OK
        }, UnsafeMutableRawPointer(pool), nil)
        let caps = rgb.caps
        defer { gst_caps_unref(caps) }
        let query = gst_query_new_allocation(caps, 1)!
        XCTAssertTrue(gst_pad_peer_query(h.h.pointee.srcpad, query).isTrue)
        XCTAssertEqual(gst_query_get_n_allocation_pools(query), 1)
        var got: UnsafeMutablePointer<GstBufferPool>?
        var size: guint = 0, minBuffers: guint = 0, maxBuffers: guint = 0
        gst_query_parse_nth_allocation_pool(query, 0, &got, &size, &minBuffers, &maxBuffers)
        XCTAssertEqual(got, pool)
        if let got { gst_object_unref(UnsafeMutableRawPointer(got)) }
        XCTAssertEqual(size, 1000)
        XCTAssertEqual(minBuffers, 2 + 13, "3 batches of 4 + 1 held by stylize")
        XCTAssertEqual(maxBuffers, 5 + 13)
        gst_query_unref(query)
        h.teardown()
    }

    func testStatsMessagesAndProperty() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "times its stats against the test engine's fixed batch duration")
        var config = TestEngine.Config()
        config.batchDelay = 0.1
        TestEngine.config = config
        let h = try Harness([("batch-size", "2")])
        h.setCaps(rgb)
        let consumer = expectation(description: "frames pulled")
        Thread {
            for _ in 0..<28 { if let b = h.pull() { gst_buffer_unref(b) } }
            consumer.fulfill()
        }.start()
        for i in 0..<28 { h.push(rgb, index: i) }
        var fps = -1.0
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ELEMENT, timeout: 5) { m in
            guard structureName(m) == "stylize-stats", let s = gst_message_get_structure(m) else { return false }
            var v = 0.0
            for f in ["latency-p50", "latency-p95", "encoder-seconds"] where !gst_structure_get_double(s, f, &v).isTrue { return false }
            var n: guint64 = 0
            guard gst_structure_get_uint64(s, "skipped", &n).isTrue else { return false }
            return gst_structure_get_double(s, "fps", &fps).isTrue
        })
        XCTAssertGreaterThan(fps, 0)
        wait(for: [consumer], timeout: 30)
        let framesOut = withProperty(h.element, "stats") { v -> guint64 in
            let s = UnsafeMutableRawPointer(g_value_get_boxed(v)!).assumingMemoryBound(to: GstStructure.self)
            var n: guint64 = 0
            _ = gst_structure_get_uint64(s, "frames-out", &n)
            return n
        }
        XCTAssertEqual(framesOut, 28)
        h.teardown()
    }
}

/// Real pipelines built in this process (so they use whatever StreamEngineFactory the
/// test installed): videotestsrc → caps → stylize → fakesink.
final class InProcessPipelineTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    /// Runs a gst-launch description to EOS; returns the buffers that reached the element
    /// named `sink`, or the first error message.
    func run(_ description: String, timeout: TimeInterval = 60) throws -> (buffers: Int, error: String?) {
        var parseError: UnsafeMutablePointer<GError>?
        guard let pipeline = gst_parse_launch(description, &parseError) else {
            defer { g_error_free(parseError) }
            throw XCTSkip("cannot build '\(description)': \(parseError.map { String(cString: $0.pointee.message) } ?? "?")")
        }
        if g_object_is_floating(UnsafeMutableRawPointer(pipeline)).isTrue { gst_object_ref_sink(UnsafeMutableRawPointer(pipeline)) }
        defer { gst_object_unref(UnsafeMutableRawPointer(pipeline)) }
        let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
        let sink = gst_bin_get_by_name(bin, "sink")!
        let pad = gst_element_get_static_pad(sink, "sink")!
        let count = Locked(0)
        _ = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, { _, _, data in
            Unmanaged<Locked<Int>>.fromOpaque(data!).takeUnretainedValue().update { $0 += 1 }
            return GST_PAD_PROBE_OK
        }, Unmanaged.passUnretained(count).toOpaque(), nil)
        gst_object_unref(UnsafeMutableRawPointer(pad))
        gst_object_unref(UnsafeMutableRawPointer(sink))
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        var error: String?
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            error = "state change failed"
        }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue)
        let done = waitForBusMessage(bus, types, timeout: timeout) { m in
            if m.pointee.type == GST_MESSAGE_ERROR { error = errorText(m).message }
            return true
        }
        if !done && error == nil { error = "no EOS within \(timeout) s" }
        XCTAssertEqual(gst_element_set_state(pipeline, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS)
        return (count.value, error)
    }

    func testEveryFormatFromVideotestsrcThrough37FramesAtBatchSize8() throws {
        for format in PipelineTests.formats {
            let r = try run("videotestsrc num-buffers=37 ! video/x-raw,format=\(format),width=40,height=30 "
                            + "! stylize batch-size=8 ! fakesink name=sink")
            XCTAssertNil(r.error, format)
            XCTAssertEqual(r.buffers, 37, format)
            if TestEngine.isInstalled {
                XCTAssertEqual(TestEngine.last!.batchShapes.map { $0[0] }, [8, 8, 8, 8, 5], format)
            }
        }
    }

    func testTwoElementsInOnePipelineAndAConverterAround() throws {
        let r = try run("videotestsrc num-buffers=20 ! video/x-raw,format=I420,width=33,height=17 ! stylize batch-size=3 "
                        + "! videoconvert ! video/x-raw,format=BGRx ! stylize batch-size=5 prompt=second ! fakesink name=sink")
        XCTAssertNil(r.error)
        XCTAssertEqual(r.buffers, 20)
    }

    /// With the real engine: two elements naming one folder load it once, and the same
    /// clip through the element twice gives byte-identical frames for a fixed seed.
    func testRealEngineSharesOneModelAndIsDeterministic() throws {
        let real = try RealEngineFixture(mode: .concatChannels)
        defer { real.restore() }
        let model = real.model
        let key = URL(fileURLWithPath: model).standardizedFileURL.resolvingSymlinksInPath().path
        let shared = try run("videotestsrc num-buffers=20 ! video/x-raw,format=I420,width=33,height=17 "
                             + "! stylize model=\(model) batch-size=3 ! videoconvert ! video/x-raw,format=BGRx "
                             + "! stylize model=\(model) batch-size=5 prompt=second ! fakesink name=sink")
        XCTAssertNil(shared.error)
        XCTAssertEqual(shared.buffers, 20)
        XCTAssertEqual(ModelRegistry.loads[key], 1, "both elements share one loaded model")
        var outputs: [Data] = []
        for i in 0..<2 {
            let file = NSTemporaryDirectory() + "stylize-determinism-\(i)-\(UUID().uuidString).raw"
            defer { try? FileManager.default.removeItem(atPath: file) }
            let r = try run("videotestsrc num-buffers=12 pattern=ball ! video/x-raw,format=RGB,width=40,height=24 "
                            + "! stylize model=\(model) seed=3 batch-size=4 ! tee name=t t. ! queue ! fakesink name=sink "
                            + "t. ! queue ! filesink location=\(file)")
            XCTAssertNil(r.error)
            outputs.append(try Data(contentsOf: URL(fileURLWithPath: file)))
        }
        XCTAssertEqual(outputs[0].count, 12 * 40 * 24 * 3)
        XCTAssertEqual(outputs[0], outputs[1], "same clip, same seed: identical frames")
    }

    func testAMissingModelStopsThePipelineWithAnError() throws {
        let r = try run("videotestsrc num-buffers=5 ! stylize model=/nonexistent/folder ! fakesink name=sink")
        XCTAssertEqual(r.buffers, 0)
        XCTAssertTrue(r.error?.contains("/nonexistent/folder") ?? false, r.error ?? "no error")
    }
}
