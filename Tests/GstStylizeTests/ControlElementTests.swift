import CGStreamer
import CGstCheck
import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport
@testable import GstStylize

/// The `control` property on a running element, with the real engine: a change loads in
/// the background and switches at a batch boundary without losing a frame; a bad file is
/// an error message naming it, and the stream goes on without an adapter.
final class ControlElementTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    private let spec = FrameSpec(format: "RGB", width: 32, height: 32)

    /// The frame a `stylize-control` message names, when its path matches.
    private func controlMessage(_ h: Harness, path: (String) -> Bool, timeout: TimeInterval) -> Int? {
        var frame: Int? = nil
        _ = h.waitForMessage(GST_MESSAGE_ELEMENT, timeout: timeout) { m in
            guard structureName(m) == "stylize-control", let s = gst_message_get_structure(m),
                  let p = gst_structure_get_string(s, "path"), path(String(cString: p)) else { return false }
            var f: guint64 = 0
            guard gst_structure_get_uint64(s, "frame", &f).isTrue else { return false }
            frame = Int(f)
            return true
        }
        return frame
    }

    private func maxDifference(_ a: [UInt8], _ b: [UInt8]) -> Int {
        zip(a, b).reduce(0) { max($0, abs(Int($1.0) - Int($1.1))) }
    }

    func testControlSetWhilePlayingSwitchesAtABatchBoundaryAndABadFileLeavesTheStreamRunning() throws {
        let real = try RealEngineFixture(mode: .sdedit)
        defer { real.restore() }
        let model = real.model
        let m = try StylizeModel(path: model)
        let lllite = NSTemporaryDirectory() + "element-lllite-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: lllite) }
        try ControlNetLLLite.randomWeights(denoiser: m.denoiser, imageDownscale: m.codec.downscale, blocks: .all,
                                           condEmbDim: 16, mlpDim: 16, seed: 3).write(to: lllite)
        let total = 24
        let base: [(String, String)] = [("model", model), ("batch-size", "2"), ("refresh-interval", "0"),
                                        ("control-strength", "2"), ("control-refresh-interval", "1")]

        // The same frames without an adapter.
        let plain = try Harness(base)
        plain.setCaps(spec)
        for i in 0..<total { XCTAssertEqual(plain.push(spec, index: i), GST_FLOW_OK) }
        plain.eos()
        let reference = plain.pull(total).map { b in defer { gst_buffer_unref(b) }; return spec.visibleBytes(b) }
        plain.teardown()
        XCTAssertEqual(reference.count, total)

        let h = try Harness(base)
        h.setCaps(spec)
        var outputs: [[UInt8]] = []
        var next = 0
        func batch() {
            for _ in 0..<2 { XCTAssertEqual(h.push(spec, index: next), GST_FLOW_OK); next += 1 }
            outputs += h.pull(2).map { b in defer { gst_buffer_unref(b) }; return spec.visibleBytes(b) }
        }
        batch()
        setProperty(h.element, "control", lllite)
        XCTAssertEqual(stringProperty(h.element, "control"), lllite)
        var switched: Int? = nil
        while switched == nil && next < 12 {
            batch()
            switched = controlMessage(h, path: { $0 == lllite }, timeout: 0.5)
        }
        guard let on = switched else { return XCTFail("no stylize-control message for \(lllite)") }
        XCTAssertEqual(on % 2, 0, "switched at a batch's first frame")
        XCTAssertGreaterThanOrEqual(on, 2)

        // A file that does not load: an error naming it, then no adapter from a batch on.
        setProperty(h.element, "control", "/nonexistent/bad.safetensors")
        batch()  // the batch that reads the new setting starts the load
        XCTAssertTrue(h.waitForMessage(GST_MESSAGE_ERROR, timeout: 10) {
            errorText($0).message.contains("/nonexistent/bad.safetensors")
        }, "an error names the file")
        var off: Int? = nil
        while off == nil && next < total - 2 {
            batch()
            off = controlMessage(h, path: { $0.isEmpty }, timeout: 0.5)
        }
        while next < total { batch() }
        h.eos()
        XCTAssertEqual(outputs.count, total, "no frame lost")
        guard let removed = off else { return XCTFail("the adapter was not removed after the bad file") }
        XCTAssertEqual(removed % 2, 0)
        print("control on from frame \(on), off from frame \(removed); max byte differences from the unadapted run:",
              (0..<total).map { maxDifference(outputs[$0], reference[$0]) })
        for i in 0..<total {
            let d = maxDifference(outputs[i], reference[i])
            // Same frames, same seed: an unadapted frame is byte-identical to the reference
            // (the tiny random model's adapter moves bytes only a little, but always).
            if i < on || i >= removed {
                XCTAssertEqual(d, 0, "frame \(i) is unadapted")
            } else {
                XCTAssertGreaterThan(d, 0, "frame \(i) is adapted")
            }
        }
        h.teardown()
    }
}
