import CGStreamer
import Foundation
import XCTest

/// The acceptance test: an RTSP test source (a separate process, rtsp-test-source.py) →
/// stylize-relay (the built executable, with the embedded model) → two in-process RTSP
/// clients joining at different times. Checks frames and their size at both clients, a
/// prompt change through the control endpoint, and recovery after the source is killed
/// and restarted on the same port; then a clean SIGTERM shutdown.
final class RelayEndToEndTests: XCTestCase {
    static let size: Int32 = 128
    static let prompt = "an oil painting of a harbour"
    /// Luma standard deviation above which a decoded frame shows the restyled test
    /// pattern rather than the restyled black slate. Measured through the relay with the
    /// embedded model at 128²: SMPTE bars 54-70, the slate 0.7 (the test prints both).
    static let contentSpread = 20.0

    private var processes: [ChildProcess] = []
    private var clients: [RTSPTestClient] = []

    override func tearDown() {
        if (testRun?.failureCount ?? 0) > 0 {
            for p in processes { print("\(p.name) log:\n\(p.log)") }
        }
        for c in clients { c.stop() }
        clients.removeAll()
        for p in processes.reversed() {
            if p.isRunning { p.stop(grace: 3) }
        }
        processes.removeAll()
        super.tearDown()
    }

    private func requirements() throws {
        guard FileManager.default.isExecutableFile(atPath: RelayPaths.relay) else {
            throw XCTSkip("\(RelayPaths.relay) not built: run swift build -c release")
        }
        _ = RTSPTestClient.initialized
        for element in ["rtspsrc", "decodebin", "rtph264pay", "rtph264depay", "appsink"] where gst_element_factory_find(element) == nil {
            throw XCTSkip("GStreamer element \(element) is not installed (gstreamer1.0-plugins-good / -base)")
        }
        if gst_element_factory_find("x264enc") == nil && gst_element_factory_find("openh264enc") == nil {
            throw XCTSkip("no H.264 encoder (x264enc in gstreamer1.0-plugins-ugly, or openh264enc)")
        }
        if gst_element_factory_find("avdec_h264") == nil && gst_element_factory_find("openh264dec") == nil {
            throw XCTSkip("no H.264 decoder (avdec_h264 in gstreamer1.0-libav, or openh264dec)")
        }
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: RelayPaths.python)
        probe.arguments = ["-c", "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"]
        probe.standardError = FileHandle.nullDevice
        try probe.run()
        probe.waitUntilExit()
        if probe.terminationStatus != 0 {
            throw XCTSkip("\(RelayPaths.python) cannot import GstRtspServer (python3-gi, gir1.2-gst-rtsp-server-1.0)")
        }
    }

    private func startSource(port: UInt16) throws -> ChildProcess {
        let source = try ChildProcess(name: "source", executable: RelayPaths.python, arguments: [RelayPaths.testSource, String(port)])
        processes.append(source)
        XCTAssertTrue(waitUntil(15) { source.log.contains("ready") || !source.isRunning }, "test source did not start")
        XCTAssertTrue(source.isRunning, "test source exited: \(source.log)")
        return source
    }

    private func status(_ controlPort: UInt16) -> [String: Any]? { HTTP.json("http://127.0.0.1:\(controlPort)/status") }

    private func sourceState(_ s: [String: Any]?) -> String? { (s?["source"] as? [String: Any])?["state"] as? String }

    func testTwoClientsPromptChangeAndRecoveryFromASourceRestart() throws {
        try requirements()
        let sourcePort = freePort(), relayPort = freePort(), controlPort = freePort()
        var source = try startSource(port: sourcePort)

        let relay = try ChildProcess(name: "relay", executable: RelayPaths.relay, arguments: [
            "--source", "rtsp://127.0.0.1:\(sourcePort)/test",
            "--host", "127.0.0.1", "--port", String(relayPort), "--control-port", String(controlPort),
            "--width", String(Self.size), "--height", String(Self.size), "--framerate", "15",
            "--batch-size", "4", "--max-batch-wait", "200", "--model", RelayPaths.model,
            "--source-timeout", "3", "--max-reconnect-delay", "1",
        ], environment: relayEnvironment())
        processes.append(relay)

        XCTAssertTrue(waitUntil(60) { sourceState(status(controlPort)) == "playing" || !relay.isRunning },
                      "relay never played the source")
        XCTAssertTrue(relay.isRunning, "relay exited: \(relay.log)")
        XCTAssertTrue(relay.log.contains("libgststylize.so"), "the plugin beside the executable is used without GST_PLUGIN_PATH")

        // 1. Two clients, joining at different times, over TCP and UDP.
        let url = "rtsp://127.0.0.1:\(relayPort)/stylize"
        let first = try RTSPTestClient(name: "first", url: url, transport: "tcp")
        clients.append(first)
        first.start()
        XCTAssertTrue(waitUntil(30) { first.frameCount >= 20 }, "first client: \(first.frameCount) frames, \(first.error ?? "")")
        let second = try RTSPTestClient(name: "second", url: url, transport: "udp")
        clients.append(second)
        let secondJoined = monotonicNow()
        second.start()
        XCTAssertTrue(waitUntil(40) { first.frameCount >= 60 && second.frameCount >= 60 },
                      "frames: first \(first.frameCount) (\(first.error ?? "ok")), second \(second.frameCount) (\(second.error ?? "ok"))")
        print("relay e2e: second client's first 60 frames after \(String(format: "%.1f", monotonicNow() - secondJoined)) s; first client has \(first.frameCount)")
        for c in [first, second] {
            XCTAssertEqual(c.frameSize?.width, Self.size, c.name)
            XCTAssertEqual(c.frameSize?.height, Self.size, c.name)
        }
        XCTAssertEqual(status(controlPort)?["clients"] as? Int, 2)
        XCTAssertFalse(relay.log.contains("second served pipeline"), "both clients share the one pipeline")

        // 2. A prompt change is active within 5 s.
        let posted = monotonicNow()
        let reply = HTTP.request("http://127.0.0.1:\(controlPort)/prompt", method: "POST",
                                 body: try JSONSerialization.data(withJSONObject: ["prompt": Self.prompt]), contentType: "application/json")
        XCTAssertEqual(reply?.status, 202)
        XCTAssertTrue(waitUntil(5) { status(controlPort)?["active_prompt"] as? String == Self.prompt }, "prompt not active within 5 s")
        print("relay e2e: prompt active \(String(format: "%.2f", monotonicNow() - posted)) s after POST /prompt")
        XCTAssertEqual(status(controlPort)?["requested_prompt"] as? String, Self.prompt)

        // 3. The source dies; clients stay connected; it comes back on the same port.
        let before = (first.frameCount, second.frameCount)
        let spreadsBefore = first.frames(since: monotonicNow() - 2).map(\.lumaSpread)
        source.crash()
        let dropped = monotonicNow()
        XCTAssertTrue(waitUntil(10) { sourceState(status(controlPort)) == "reconnecting" }, "relay did not notice the drop")
        usleep(3_000_000)  // an outage long enough for the slate
        XCTAssertNil(first.error)
        XCTAssertNil(second.error)
        XCTAssertGreaterThan(first.frameCount, before.0, "first client kept receiving frames during the outage")
        XCTAssertGreaterThan(second.frameCount, before.1, "second client kept receiving frames during the outage")
        let spreadsDuring = first.frames(since: monotonicNow() - 1).map(\.lumaSpread)

        source = try startSource(port: sourcePort)
        let restarted = monotonicNow()
        let recovered = waitUntil(10) {
            [first, second].allSatisfy { c in c.frames(since: restarted).filter { $0.lumaSpread > Self.contentSpread }.count >= 15 }
        }
        let recovery = monotonicNow() - restarted
        print("relay e2e: outage \(String(format: "%.1f", restarted - dropped)) s; both clients show the source again \(String(format: "%.1f", recovery)) s after its restart")
        print("relay e2e: luma spread before drop \(summary(spreadsBefore)), during outage \(summary(spreadsDuring)), after \(summary(first.frames(since: restarted).map(\.lumaSpread)))")
        XCTAssertTrue(recovered, "clients did not show the source within 10 s of its restart")
        let s = status(controlPort)
        XCTAssertEqual(sourceState(s), "playing")
        XCTAssertGreaterThanOrEqual((s?["source"] as? [String: Any])?["reconnects"] as? Int ?? 0, 1)
        print("relay e2e: frames received: first \(first.frameCount), second \(second.frameCount)")

        // 4. Clients leave: the relay counts them out and stops restyling for nobody.
        for c in clients { c.stop() }
        XCTAssertTrue(waitUntil(10) { status(controlPort)?["clients"] as? Int == 0 }, "clients still counted")
        XCTAssertTrue(waitUntil(2) { relay.log.contains("no clients: restyling pauses") })

        // 5. Clean shutdown on SIGTERM.
        XCTAssertEqual(relay.stop(grace: 10), 0, "relay exit status after SIGTERM")
        XCTAssertTrue(relay.log.contains("stopped"))
    }

    private func summary(_ values: [Double]) -> String {
        guard !values.isEmpty else { return "n/a" }
        let sorted = values.sorted()
        return String(format: "min %.1f median %.1f max %.1f (n=%d)", sorted.first!, sorted[sorted.count / 2], sorted.last!, sorted.count)
    }
}
