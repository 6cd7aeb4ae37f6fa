import CGStreamer
import CShims
import Foundation
import StylizeCore
import StylizeEngine
import StylizeProperties
import XCTest
@testable import GstStylize

/// The property table (ElementProperty) is the one place properties are defined: what
/// gst-inspect shows, the README's table and the engine's settings must follow it.
final class PropertyTableTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    private func element() -> UnsafeMutablePointer<GstElement> {
        let e = gst_element_factory_make("stylize", nil)!
        gst_object_ref_sink(UnsafeMutableRawPointer(e))
        return e
    }

    func testEveryParamSpecIsItsTableRow() throws {
        let e = element()
        defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
        let playing = Int32(1) << (Int32(G_PARAM_USER_SHIFT) + 4)   // GST_PARAM_MUTABLE_PLAYING
        let ready = Int32(1) << (Int32(G_PARAM_USER_SHIFT) + 2)     // GST_PARAM_MUTABLE_READY
        for p in ElementProperty.allCases {
            let s = p.spec
            let spec = try XCTUnwrap(paramSpec(e, s.name), s.name)
            XCTAssertEqual(spec.pointee.param_id, guint(p.rawValue))
            XCTAssertEqual(String(cString: g_param_spec_get_nick(spec)), s.nick)
            XCTAssertEqual(String(cString: g_param_spec_get_blurb(spec)), s.blurb)
            let flags = spec.pointee.flags.rawValue
            XCTAssertEqual(flags & G_PARAM_WRITABLE.rawValue != 0, s.mutability != .readOnly, s.name)
            XCTAssertEqual(flags & playing != 0, s.mutability == .playing, s.name)
            XCTAssertEqual(flags & ready != 0, s.mutability == .ready, s.name)
            let raw = UnsafeMutableRawPointer(spec)
            switch s.kind {
            case .string(let d):
                let v = raw.assumingMemoryBound(to: GParamSpecString.self).pointee.default_value.map { String(cString: $0) }
                XCTAssertEqual(v, d ?? Settings.defaultModelPath(), s.name)
            case .uint(let r, let d):
                let u = raw.assumingMemoryBound(to: GParamSpecUInt.self).pointee
                XCTAssertEqual([u.minimum, u.maximum, u.default_value], [r.lowerBound, r.upperBound, d], s.name)
            case .uint64(let d):
                let u = raw.assumingMemoryBound(to: GParamSpecUInt64.self).pointee
                XCTAssertEqual([UInt64(u.minimum), UInt64(u.maximum), UInt64(u.default_value)], [0, .max, d], s.name)
            case .float(let r, let d):
                let f = raw.assumingMemoryBound(to: GParamSpecFloat.self).pointee
                XCTAssertEqual([f.minimum, f.maximum, f.default_value], [r.lowerBound, r.upperBound, d], s.name)
            case .bool(let d):
                XCTAssertEqual(raw.assumingMemoryBound(to: GParamSpecBoolean.self).pointee.default_value.isTrue, d, s.name)
            case .structure:
                XCTAssertEqual(spec.pointee.value_type, gst_structure_get_type(), s.name)
            }
        }
    }

    /// The README's property table is the one the table renders.
    func testReadmePropertyTableIsTheTables() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        XCTAssertTrue(readme.contains(PropertyTableMarkdown.render()),
                      "README.md's property table differs from ElementProperty; paste `stylize-tool properties`:\n"
                      + PropertyTableMarkdown.render())
    }

    /// steps and strength left unset are the model's (stylize.json), both in what the
    /// engine gets and in what reading the property gives; set, they are the user's.
    func testUnsetStepsAndStrengthAreTheModels() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "reads the settings the test engine received")
        var config = TestEngine.Config()
        config.modelSteps = 4
        config.modelStrength = 0.3
        TestEngine.config = config
        let h = try Harness([("batch-size", "1")])
        XCTAssertEqual(uintProperty(h.element, "steps"), 4)
        XCTAssertEqual(withProperty(h.element, "strength") { g_value_get_float($0) }, 0.3)
        let rgb = FrameSpec(format: "RGB", width: 8, height: 8)
        h.setCaps(rgb)
        h.push(rgb, index: 0)
        h.pull(1).forEach { gst_buffer_unref($0) }
        XCTAssertEqual(TestEngine.last!.lastSettings?.steps, 4)
        XCTAssertEqual(TestEngine.last!.lastSettings?.strength, 0.3)
        setProperty(h.element, "steps", "2")
        h.push(rgb, index: 1)
        h.pull(1).forEach { gst_buffer_unref($0) }
        XCTAssertEqual(TestEngine.last!.lastSettings?.steps, 2)
        XCTAssertEqual(TestEngine.last!.lastSettings?.strength, 0.3, "strength is still unset")
        XCTAssertEqual(uintProperty(h.element, "steps"), 2)
        h.teardown()
    }

    /// `threads` is this element's budget: another element's stays its own, and the
    /// process-wide default is untouched.
    func testThreadsIsPerElement() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "reads the thread budget the test engine saw")
        let before = ThreadBudget.threads
        let one = try Harness([("batch-size", "1"), ("threads", "1")])
        let oneEngine = TestEngine.last!
        let three = try Harness([("batch-size", "1"), ("threads", "3")])
        let threeEngine = TestEngine.last!
        let rgb = FrameSpec(format: "RGB", width: 8, height: 8)
        for h in [one, three] {
            h.setCaps(rgb)
            h.push(rgb, index: 0)
            h.pull(1).forEach { gst_buffer_unref($0) }
        }
        XCTAssertEqual(oneEngine.lastThreads, 1)
        XCTAssertEqual(threeEngine.lastThreads, 3)
        XCTAssertEqual(ThreadBudget.threads, before, "the process-wide default changed")
        one.teardown()
        three.teardown()
    }

    /// One element stopping leaves the tensor pool to the others; the last one empties it.
    func testOnlyTheLastRunningElementDrainsTheTensorPool() throws {
        let a = try Harness([("batch-size", "1")])
        let b = try Harness([("batch-size", "1")])
        _ = TensorBuffer(repeating: 0, count: 4096)   // freed at once: now pooled
        XCTAssertGreaterThan(TensorBufferPool.statistics.pooledBytes, 0)
        a.teardown()
        XCTAssertGreaterThan(TensorBufferPool.statistics.pooledBytes, 0, "a stopping element drained a pool b still uses")
        b.teardown()
        XCTAssertEqual(TensorBufferPool.statistics.pooledBytes, 0, "the last element to stop gives the pool back")
    }

    /// latency-p50/p95 are a frame's time in the element, its wait for the batch to fill
    /// included; batch-seconds is the compute alone.
    func testLatencyCountsTheWaitForTheBatch() throws {
        try XCTSkipUnless(TestEngine.isInstalled, "times against the test engine's batch delay")
        var config = TestEngine.Config()
        config.batchDelay = 0.02
        TestEngine.config = config
        let h = try Harness([("batch-size", "4")])
        let rgb = FrameSpec(format: "RGB", width: 8, height: 8)
        h.setCaps(rgb)
        for i in 0..<8 {
            h.push(rgb, index: i)
            Thread.sleep(forTimeInterval: 0.05)   // a 20 fps live source
        }
        h.pull(8).forEach { gst_buffer_unref($0) }
        let (p50, p95, batch) = withProperty(h.element, "stats") { v -> (Double, Double, Double) in
            let s = UnsafeMutableRawPointer(g_value_get_boxed(v)!).assumingMemoryBound(to: GstStructure.self)
            var a = 0.0, b = 0.0, c = 0.0
            _ = gst_structure_get_double(s, "latency-p50", &a)
            _ = gst_structure_get_double(s, "latency-p95", &b)
            _ = gst_structure_get_double(s, "batch-seconds-p50", &c)
            return (a, b, c)
        }
        // Frames wait 0.15, 0.10, 0.05 and 0 s for the batch's last frame, then 0.02 s.
        XCTAssertGreaterThanOrEqual(batch, 0.02)
        XCTAssertLessThan(batch, 0.1)
        XCTAssertGreaterThan(p50, 0.06)
        XCTAssertGreaterThan(p95, 0.15)
        XCTAssertGreaterThan(p95, 2 * batch)
        h.teardown()
    }
}
