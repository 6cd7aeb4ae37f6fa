import Foundation
import StylizeEngine
import StylizeTestSupport
import XCTest

/// Runs the embedding examples (examples/) the way their headers tell a developer to,
/// against the embedded model, and checks what each reports.
final class ExampleTests: XCTestCase {
    var scratch: String!

    override func setUpWithError() throws {
        scratch = try Repository.temporaryDirectory("examples")
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: scratch) }

    private func requirePlugin() throws {
        let plugin = Repository.buildDirectory + "/libgststylize.so"
        XCTAssertTrue(FileManager.default.fileExists(atPath: plugin), "\(plugin) missing: run `swift build -c release` first")
    }

    private func assertEmbeddedModel(_ report: [String: Any], file: StaticString = #filePath, line: UInt = #line) {
        let model = (report["model"] as? String).map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path }
        XCTAssertEqual(model, URL(fileURLWithPath: Repository.model).resolvingSymlinksInPath().path, file: file, line: line)
    }

    /// appsrc ! stylize ! appsink from Python: every numpy frame comes back at its size,
    /// the prompt switched while playing takes effect (its stylize-conditioning message
    /// arrives and the same frames come out in another style), stats messages arrive.
    func testPythonAppPushesFramesAndSwitchesThePrompt() throws {
        try requirePlugin()
        let python = "/usr/bin/python3"
        let probe = try runProcess(python, ["-c", "import gi, numpy; gi.require_version('GstApp', '1.0'); gi.require_version('GstVideo', '1.0')"])
        try XCTSkipUnless(probe.status == 0, "needs Debian's python3-gi, python3-gst-1.0 and python3-numpy: \(probe.stderr)")

        let r = try runProcess(python, [Repository.root + "/examples/python/stylize_app.py", "--frames", "24"],
                               environment: Repository.developerEnvironment(), timeout: 180)
        XCTAssertEqual(r.status, 0, r.output)
        let report = try XCTUnwrap(Repository.report(r), r.output)
        assertEveryFrameRestyledAndThePromptSwitched(report, frames: 48, r.stdout)
        let activated = (report["conditioning"] as? [[String: Any]] ?? []).compactMap { $0["prompt"] as? String }
        XCTAssertTrue(activated.contains("neon glow"), "\(activated)")
        XCTAssertGreaterThanOrEqual(report["stats_messages"] as? Int ?? 0, 1)
        let stats = report["last_stats"] as? [String: Any]
        XCTAssertGreaterThan(stats?["frames-out"] as? Int ?? 0, 0)
        XCTAssertGreaterThan(stats?["fps"] as? Double ?? 0, 0)
        XCTAssertEqual(report["got_eos"] as? Bool, true)
        XCTAssertEqual((report["errors"] as? [String])?.count, 0)
    }

    /// What both the Python and the Swift example report: the embedded model, N frames in
    /// and out at the pushed size, and a second prompt that became active and changed the
    /// picture (pencil, light grey, vs. neon, dark: far apart on 0-255 pixels).
    private func assertEveryFrameRestyledAndThePromptSwitched(_ report: [String: Any], frames: Int, _ output: String,
                                                             file: StaticString = #filePath, line: UInt = #line) {
        assertEmbeddedModel(report)
        XCTAssertEqual(report["frames_in"] as? Int, frames, file: file, line: line)
        XCTAssertEqual(report["frames_out"] as? Int, frames, file: file, line: line)
        XCTAssertEqual(report["sizes"] as? [String], ["128x96"], file: file, line: line)
        XCTAssertEqual(report["second_prompt_active"] as? Bool, true, file: file, line: line)
        XCTAssertGreaterThan(report["mean_colour_distance"] as? Double ?? 0, 30, output, file: file, line: line)
        XCTAssertGreaterThan(report["mean_abs_frame_difference"] as? Double ?? 0, 20, output, file: file, line: line)
    }

    /// The C program, compiled here the way its header says: both pipelines (parse-launch
    /// and factory-make) deliver every frame; a model that does not load makes it fail.
    func testCProgramBuildsAndRunsBothPipelines() throws {
        try requirePlugin()
        let binary = scratch + "/stylize_embed"
        let cc = try Repository.shell(
            "cc -Wall -o '\(binary)' examples/c/stylize_embed.c $(pkg-config --cflags --libs gstreamer-1.0 gstreamer-app-1.0)")
        XCTAssertEqual(cc.status, 0, cc.output)
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: binary), "the C example did not build")

        let r = try runProcess(binary, ["12"], environment: Repository.developerEnvironment(), timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("parse-launch: 12/12 frames"), r.output)
        XCTAssertTrue(r.stdout.contains("factory-make: 12/12 frames 96x64"), r.output)

        var broken = Repository.developerEnvironment()
        broken["STYLIZE_MODEL_DIR"] = "/nonexistent/stylize-model"
        let failed = try runProcess(binary, ["4"], environment: broken, timeout: 120)
        XCTAssertEqual(failed.status, 1, failed.output)
        XCTAssertTrue(failed.stderr.contains("/nonexistent/stylize-model"), failed.output)
        XCTAssertTrue(failed.stdout.contains("parse-launch: 0/4 frames"), failed.output)
    }

    /// The Swift program on the StylizeEngine library alone, run from the repository root
    /// (its default model is models/nano there): both prompts' frames come back at size,
    /// differ clearly, and the PNGs it writes read back.
    func testSwiftProgramUsesTheEngineWithoutGStreamer() throws {
        let binary = Repository.buildDirectory + "/stylize-embed-example"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary), "\(binary) missing")
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "STYLIZE_MODEL_DIR")
        let r = try runProcess(binary, ["--output-dir", scratch], environment: env,
                               currentDirectory: Repository.root, timeout: 120)
        XCTAssertEqual(r.status, 0, r.output)
        let report = try XCTUnwrap(Repository.report(r), r.output)
        assertEveryFrameRestyledAndThePromptSwitched(report, frames: 8, r.stdout)
        XCTAssertEqual(report["stats_frames_out"] as? Int, 8)

        for name in ["first-0", "second-3"] {
            let image = try PNGCodec.read(path: "\(scratch!)/\(name).png")
            XCTAssertEqual([image.width, image.height], [128, 96], name)
        }
        // The binary links no GStreamer.
        let ldd = try runProcess("/usr/bin/ldd", [binary])
        XCTAssertFalse(ldd.stdout.contains("libgst"), ldd.stdout)
    }
}
