import Foundation
import XCTest

/// The built `stylize-relay` as a user runs it: help, and the errors that must end it
/// with a message and a non-zero status (all before a model is loaded, so quick).
final class RelayCommandTests: XCTestCase {
    private var occupied: [Int32] = []

    override func tearDown() {
        for fd in occupied { close(fd) }
        occupied.removeAll()
        super.tearDown()
    }

    private func run(_ args: [String], environment: [String: String] = relayEnvironment(),
                     timeout: Double = 60) throws -> (status: Int32, output: String) {
        guard FileManager.default.isExecutableFile(atPath: RelayPaths.relay) else {
            throw XCTSkip("\(RelayPaths.relay) not built: run swift build -c release")
        }
        let child = try ChildProcess(name: "relay-cli", executable: RelayPaths.relay, arguments: args, environment: environment)
        let exited = waitUntil(timeout) { !child.isRunning }
        if !exited { child.stop(grace: 1) }
        XCTAssertTrue(exited, "stylize-relay \(args.joined(separator: " ")) did not exit: \(child.log)")
        child.process.waitUntilExit()
        XCTAssertEqual(child.process.terminationReason, .exit, "ended by a signal: \(child.log)")
        return (child.process.terminationStatus, child.log)
    }

    /// A port with a listener on it.
    private func occupiedPort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        listen(fd, 1)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        occupied.append(fd)
        return UInt16(bigEndian: addr.sin_port)
    }

    func testHelpDocumentsSourcesElementOptionsAndTheControlEndpoint() throws {
        let r = try run(["--help"])
        XCTAssertEqual(r.status, 0)
        for needle in ["--source <uri>", "--source-pipeline", "--port", "--mount", "--width", "--height", "--framerate",
                       "--encoder", "--control-port", "GET  /status", "POST /prompt", "GST_PLUGIN_PATH",
                       "--model", "--prompt", "--batch-size", "--max-batch-wait", "--steps", "--strength", "--seed",
                       "--fixed-noise/--no-fixed-noise", "--similarity-skip", "--refresh-interval", "--threads"] {
            XCTAssertTrue(r.output.contains(needle), "--help lacks \(needle)")
        }
    }

    func testABadSourceDescriptionIsAnError() throws {
        let r = try run(["--source-pipeline", "nosuchelement_xyz is-live=true", "--port", "0", "--control-port", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("invalid source 'nosuchelement_xyz is-live=true'"), r.output)
        XCTAssertTrue(r.output.contains("nosuchelement_xyz"), r.output)
    }

    func testAURISchemeNothingReadsIsAnError() throws {
        let r = try run(["--source", "nosuchscheme://camera/1", "--port", "0", "--control-port", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("invalid source 'nosuchscheme://camera/1': no installed GStreamer element reads nosuchscheme:// URIs"), r.output)
    }

    /// A model the element cannot load fails the served pipeline at start, named.
    func testAnUnloadableModelIsAnError() throws {
        let r = try run(["--source-pipeline", "videotestsrc is-live=true", "--host", "127.0.0.1", "--port", "0",
                         "--control-port", "0", "--model", "/nonexistent/relay-model"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("the served pipeline failed: stylize: Could not load model '/nonexistent/relay-model'"), r.output)
    }

    func testAnRTSPPortInUseIsAnError() throws {
        let port = occupiedPort()
        let r = try run(["--source-pipeline", "videotestsrc is-live=true", "--host", "127.0.0.1", "--port", String(port),
                         "--control-port", "0"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("RTSP server cannot listen on 127.0.0.1:\(port)"), r.output)
        XCTAssertTrue(r.output.contains("in use"), r.output)
    }

    func testAControlPortInUseIsAnError() throws {
        let port = occupiedPort()
        let r = try run(["--source-pipeline", "videotestsrc is-live=true", "--host", "127.0.0.1", "--port", "0",
                         "--control-port", String(port)])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("control endpoint cannot listen on 127.0.0.1:\(port)"), r.output)
    }

    /// With GStreamer's plugins hidden (an empty system plugin folder) the relay still
    /// finds its own plugin beside the executable, then names the first missing element
    /// and the Debian package that has it.
    func testMissingPluginsAreNamed() throws {
        let empty = NSTemporaryDirectory() + "relay-no-plugins-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        var env = relayEnvironment()
        env["GST_PLUGIN_SYSTEM_PATH_1_0"] = empty
        env["GST_REGISTRY_1_0"] = empty + "/registry.bin"
        let r = try run(["--source-pipeline", "videotestsrc is-live=true", "--port", "0", "--control-port", "0"], environment: env)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("stylize element from"), "the plugin beside the executable is loaded: \(r.output)")
        XCTAssertTrue(r.output.contains("GStreamer element 'appsrc'") && r.output.contains("gstreamer1.0-plugins-base"), r.output)
    }

    /// With only some plugins visible (no x264), the relay falls back to openh264enc and
    /// says so; with no H.264 encoder at all it names both and their packages.
    func testEncoderFallbackAndNoEncoder() throws {
        let system = "/usr/lib/x86_64-linux-gnu/gstreamer-1.0"
        let base = ["libgstapp.so", "libgstcoreelements.so", "libgstvideoconvertscale.so", "libgstvideotestsrc.so", "libgstrtp.so"]
        for file in base + ["libgstopenh264.so"] where !FileManager.default.fileExists(atPath: system + "/" + file) {
            throw XCTSkip("\(system)/\(file) not installed")
        }
        for (extra, expect) in [(["libgstopenh264.so"], "H.264 encoder: openh264enc (x264enc is not installed)"),
                                ([], "no H.264 encoder: none of x264enc, openh264enc is installed")] {
            let dir = NSTemporaryDirectory() + "relay-some-plugins-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            for file in base + extra {
                try FileManager.default.createSymbolicLink(atPath: dir + "/" + file, withDestinationPath: system + "/" + file)
            }
            var env = relayEnvironment()
            env["GST_PLUGIN_SYSTEM_PATH_1_0"] = dir
            env["GST_REGISTRY_1_0"] = dir + "/registry.bin"
            // With an encoder the relay gets as far as the RTSP server, which lacks its own
            // plugins here (rtpbin, udpsink): it must fail, but only after choosing.
            let r = try run(["--source-pipeline", "videotestsrc is-live=true", "--host", "127.0.0.1", "--port", "0",
                             "--control-port", "0", "--width", "64", "--height", "64"], environment: env)
            XCTAssertNotEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains(expect), r.output)
        }
    }
}
