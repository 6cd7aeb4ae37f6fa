import Foundation
import XCTest
import StylizeTestSupport
import StylizeEngine

/// The built plugin file (`libgststylize.so`) in real GStreamer tools, found through
/// GST_PLUGIN_PATH = the build folder.
final class PipelineTests: XCTestCase {
    static let formats = ["RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "ARGB", "ABGR", "I420", "NV12"]

    override func setUpWithError() throws {
        let plugin = buildDirectory().appendingPathComponent("libgststylize.so").path
        XCTAssertTrue(FileManager.default.fileExists(atPath: plugin), "\(plugin) missing: run `swift build -c release` first")
    }

    func testInspectIsCleanAndComplete() throws {
        guard let r = try runGstTool("gst-inspect-1.0", ["stylize"]) else { throw XCTSkip("gst-inspect-1.0 not installed") }
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stderr.contains("WARNING") || r.stderr.contains("CRITICAL"), r.stderr)
        XCTAssertFalse(r.stdout.contains("WARNING") || r.stdout.contains("CRITICAL"))
        for needle in ["Long-name                Stylize", "Klass                    Filter/Effect/Video",
                       "Description", "Author", "SINK template: 'sink'", "SRC template: 'src'"] {
            XCTAssertTrue(r.stdout.contains(needle), needle)
        }
        for f in Self.formats { XCTAssertTrue(r.stdout.contains("(string)\(f),") || r.stdout.contains("(string)\(f) }"), f) }
        let properties = ["model", "prompt", "batch-size", "steps", "strength", "seed", "fixed-noise",
                          "refresh-interval", "max-batch-wait", "similarity-skip", "threads", "passthrough", "control",
                          "control-strength", "control-refresh-interval", "temporal", "working-scale", "stats"]
        for p in properties {
            XCTAssertNotNil(r.stdout.range(of: "\n  \(p) *: ", options: .regularExpression), "property \(p) listed")
        }
        // Every writable property says when it may change, its range and its default.
        XCTAssertEqual(r.stdout.components(separatedBy: "changeable in NULL, READY, PAUSED or PLAYING state").count - 1, 16)
        XCTAssertTrue(r.stdout.contains("changeable only in NULL or READY state"))
        XCTAssertTrue(r.stdout.contains("Range: 1 - 64 Default: 8"))
        XCTAssertTrue(r.stdout.contains("Range: 1 - 8 Default: 1"))
        XCTAssertTrue(r.stdout.contains("Range: 0 - 10000 Default: 30"))
        XCTAssertTrue(r.stdout.contains("Range: 0 - 60000 Default: 0"))
        XCTAssertTrue(r.stdout.contains("Range: 0 - 64 Default: 0"))
        XCTAssertTrue(r.stdout.contains("Range: 1 - 10000 Default: 8"), "control-refresh-interval")
        XCTAssertTrue(r.stdout.contains("Range:               0 -               2 Default:               1"), "control-strength")
    }

    func testLaunchWithAMissingModelExitsNonZeroWithoutCrashing() throws {
        guard let r = try runGstTool("gst-launch-1.0", ["videotestsrc", "num-buffers=3", "!", "stylize", "model=/nonexistent/model",
                                                        "!", "fakesink"]) else {
            throw XCTSkip("gst-launch-1.0 not installed")
        }
        XCTAssertTrue(r.exitedNormally, "terminated by a signal:\n\(r.stderr)")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue((r.stdout + r.stderr).contains("/nonexistent/model"), r.stdout + r.stderr)
    }

    /// videotestsrc → stylize → fakesink in every format, 37 frames at batch-size 8: all
    /// 37 come out, through the real plugin and engine with a real (tiny, random-weight)
    /// model folder: U-Net, autoencoder, Qwen3-VL encoder, tokenizer, scheduler.
    func testEveryFormatThroughARealPipeline() throws {
        let model = try TinyModelFolder.make(mode: .concatChannels, scheduler: "DDIMScheduler",
                                             schedulerExtra: #", "prediction_type": "sample""#)
        defer { try? FileManager.default.removeItem(atPath: model) }
        for format in Self.formats {
            let args = ["-m", "videotestsrc", "num-buffers=37", "!", "video/x-raw,format=\(format),width=64,height=48",
                        "!", "stylize", "batch-size=8", "model=\(model)", "!", "fakesink", "silent=false", "-v"]
            guard let r = try runGstTool("gst-launch-1.0", args, timeout: 120) else { throw XCTSkip("gst-launch-1.0 not installed") }
            XCTAssertEqual(r.status, 0, "\(format): \(r.stderr)")
            // fakesink -v prints one "last-message = chain" line per buffer (-m adds a
            // property-notify message line for each, which is not counted).
            let buffers = r.stdout.components(separatedBy: "\n").filter { $0.contains("fakesink0: last-message = chain") }.count
            XCTAssertEqual(buffers, 37, format)
            XCTAssertTrue(r.stdout.contains("Got EOS"), format)
        }
    }
}
