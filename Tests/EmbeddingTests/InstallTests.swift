import Foundation
import StylizeTestSupport
import XCTest

/// scripts/install.sh staged into a temporary root (--destdir): the plugin there needs
/// nothing from the Swift toolchain, GStreamer loads it, it finds the staged model and
/// processes frames; --uninstall removes it all again. (.ci/run ends with a real install
/// checked in a fresh `env -i` shell.)
final class InstallTests: XCTestCase {
    func testStagedInstallLoadsWithoutTheToolchainAndUninstalls() throws {
        let stage = try Repository.temporaryDirectory("install-stage")
        defer { try? FileManager.default.removeItem(atPath: stage) }
        let pluginsDir = try Repository.shell("pkg-config --variable=pluginsdir gstreamer-1.0").stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(pluginsDir.isEmpty)

        let install = try Repository.shell("scripts/install.sh --destdir '\(stage)'", timeout: 900)
        XCTAssertEqual(install.status, 0, install.output)
        let plugin = stage + pluginsDir + "/libgststylize.so"
        let model = stage + "/usr/local/share/stylize/models/nano"
        XCTAssertTrue(FileManager.default.fileExists(atPath: plugin), install.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: model + "/model_index.json"), install.output)
        XCTAssertTrue(FileManager.default.fileExists(atPath: model + "/unet/diffusion_pytorch_model.safetensors"))

        // The development build takes its Swift runtime from the toolchain; the installed
        // plugin must take nothing from there and miss nothing.
        let devLdd = try runProcess("/usr/bin/ldd", [Repository.buildDirectory + "/libgststylize.so"]).stdout
        let toolchainLib = try XCTUnwrap(devLdd.split(separator: "\n").first { $0.contains("libswiftCore.so") }
            .flatMap { $0.split(separator: " ").first { $0.hasPrefix("/") } }
            .map { URL(fileURLWithPath: String($0)).deletingLastPathComponent().path }, devLdd)
        let ldd = try runProcess("/usr/bin/ldd", [plugin])
        XCTAssertEqual(ldd.status, 0, ldd.output)
        XCTAssertFalse(ldd.stdout.contains("not found"), ldd.stdout)
        XCTAssertFalse(ldd.stdout.contains(toolchainLib), ldd.stdout)
        XCTAssertFalse(ldd.stdout.contains("libswiftCore") || ldd.stdout.contains("libFoundation"), ldd.stdout)
        XCTAssertTrue(ldd.stdout.contains("libgstreamer-1.0.so"), ldd.stdout)

        // GStreamer finds the staged plugin first, the element the staged model in the
        // staged data folder (what /usr/local/share is after a real install).
        var env = ProcessInfo.processInfo.environment
        for k in ["GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "STYLIZE_MODEL_DIR"] { env.removeValue(forKey: k) }
        env["GST_PLUGIN_SYSTEM_PATH"] = stage + pluginsDir + ":" + pluginsDir
        env["GST_REGISTRY"] = stage + "/registry.bin"
        env["XDG_DATA_DIRS"] = stage + "/usr/local/share"
        let inspect = try runProcess("/usr/bin/gst-inspect-1.0", ["stylize"], environment: env)
        XCTAssertEqual(inspect.status, 0, inspect.output)
        XCTAssertTrue(inspect.stdout.contains("Filename                 \(plugin)\n"), inspect.stdout)
        XCTAssertTrue(inspect.stdout.contains("String. Default: \"\(model)\""), inspect.stdout)
        XCTAssertFalse(inspect.stderr.contains("WARNING") || inspect.stderr.contains("CRITICAL"), inspect.stderr)

        let launch = try runProcess("/usr/bin/gst-launch-1.0",
                                    ["videotestsrc", "num-buffers=10", "!", "video/x-raw,width=128,height=128", "!",
                                     "stylize", "!", "fakesink", "silent=false", "-v"],
                                    environment: env, timeout: 120)
        XCTAssertEqual(launch.status, 0, launch.output)
        let buffers = launch.stdout.components(separatedBy: "\n").filter { $0.contains("fakesink0: last-message = chain") }.count
        XCTAssertEqual(buffers, 10, launch.output)

        let uninstall = try Repository.shell("scripts/install.sh --destdir '\(stage)' --uninstall")
        XCTAssertEqual(uninstall.status, 0, uninstall.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: plugin))
        XCTAssertFalse(FileManager.default.fileExists(atPath: stage + "/usr/local/share/stylize"))
    }
}
