import ArgumentParser
import CGStreamer
import CGstRtspServer
import CShims
import Foundation
import XCTest
@testable import StylizeRelay

/// The relay's pieces without a running relay: options, pipeline descriptions (parsed by
/// GStreamer with the element linked into this process), encoder choice, status JSON,
/// the prompt body, the slate frame.
final class RelayUnitTests: XCTestCase {
    static let gstReady: Bool = {
        gst_init(nil, nil)
        precondition(gst_stylize_register_static() != 0)
        return true
    }()

    override func setUp() {
        super.setUp()
        _ = Self.gstReady
    }

    // MARK: options

    func testDefaults() throws {
        let o = try RelayOptions.parse(["--source", "rtsp://camera/stream"])
        XCTAssertEqual(o.source.spec, .uri("rtsp://camera/stream"))
        XCTAssertEqual(o.served.host, "0.0.0.0")
        XCTAssertEqual(o.served.port, 8554)
        XCTAssertEqual(o.served.mount, "/stylize")
        XCTAssertEqual(o.served.format, ServedFormat(width: 640, height: 480, framerate: 25), "a webcam's size: the embedded model runs it at video rate")
        XCTAssertEqual(o.served.encoder, "auto")
        XCTAssertEqual(o.source.rtspTransport, .tcp)
        XCTAssertEqual(o.source.timeout, 5)
        XCTAssertEqual(o.source.latency, 200)
        XCTAssertEqual(o.control.host, "127.0.0.1")
        XCTAssertEqual(o.control.port, 8555)
        XCTAssertNil(o.stylize.model)
        XCTAssertEqual(o.stylize.properties.first?.name, "prompt", "model is left to the element unless given")
    }

    func testInvalidOptionsAreRejectedWithTheOptionNamed() {
        let cases: [([String], String)] = [
            ([], "--source"),
            (["--source", "rtsp://a/b", "--source-pipeline", "videotestsrc"], "not both"),
            (["--source", "camera.local/stream"], "--source"),
            (["--source-pipeline", "  "], "--source-pipeline"),
            (["--source", "rtsp://a/b", "--width", "255"], "--width"),
            (["--source", "rtsp://a/b", "--height", "8"], "--height"),
            (["--source", "rtsp://a/b", "--framerate", "0"], "--framerate"),
            (["--source", "rtsp://a/b", "--mount", "stylize"], "--mount"),
            (["--source", "rtsp://a/b", "--encoder", "vp8enc"], "--encoder"),
            (["--source", "rtsp://a/b", "--batch-size", "0"], "--batch-size"),
            (["--source", "rtsp://a/b", "--batch-size", "65"], "--batch-size"),
            (["--source", "rtsp://a/b", "--steps", "9"], "--steps"),
            (["--source", "rtsp://a/b", "--strength", "1.5"], "--strength"),
            (["--source", "rtsp://a/b", "--similarity-skip", "-0.1"], "--similarity-skip"),
            (["--source", "rtsp://a/b", "--max-batch-wait", "60001"], "--max-batch-wait"),
            (["--source", "rtsp://a/b", "--refresh-interval", "10001"], "--refresh-interval"),
            (["--source", "rtsp://a/b", "--threads", "65"], "--threads"),
            (["--source", "rtsp://a/b", "--log-level", "loud"], "--log-level"),
        ]
        for (args, needle) in cases {
            XCTAssertThrowsError(try RelayOptions.parse(args), args.joined(separator: " ")) { error in
                let message = RelayOptions.message(for: error)
                XCTAssertTrue(message.contains(needle), "\(args): \(message)")
            }
        }
    }

    /// Every writable property of the element has an option, and the options left out are
    /// not passed (the element keeps its own defaults, the model's for steps and strength).
    func testElementOptionsCoverTheElementWithItsDefaults() throws {
        let element = try XCTUnwrap(gst_element_factory_make("stylize", nil))
        defer { gst_object_unref(element) }
        let object = UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self)
        let klass = UnsafeMutableRawPointer(object.pointee.g_type_instance.g_class!).assumingMemoryBound(to: GObjectClass.self)

        var count: guint = 0
        let specs = g_object_class_list_properties(klass, &count)!
        defer { g_free(specs) }
        var writable: Set<String> = []
        for i in 0..<Int(count) {
            let spec = specs[i]!
            let name = String(cString: spec.pointee.name)
            if spec.pointee.flags.rawValue & G_PARAM_WRITABLE.rawValue != 0, !["name", "parent"].contains(name) {
                writable.insert(name)
            }
        }
        XCTAssertEqual(Set(StylizeOptions.covered.map(\.spec.name)), writable)
        let options = try StylizeOptions.parse([])
        XCTAssertEqual(options.properties.map(\.name), ["prompt"])
        for (name, value) in options.properties {
            let spec = try XCTUnwrap(g_object_class_find_property(klass, name), name)
            gst_util_set_object_arg(object, name, value)
            var current = GValue()
            g_value_init(&current, spec.pointee.value_type)
            g_object_get_property(object, name, &current)
            defer { g_value_unset(&current) }
            XCTAssertEqual(g_param_value_defaults(spec, &current), 1, "--\(name) default \(value) is not the element's")
        }
        let all = try StylizeOptions.parse(["--batch-size", "4", "--steps", "2", "--strength", "0.25", "--seed", "7",
                                            "--no-fixed-noise", "--refresh-interval", "3", "--max-batch-wait", "100",
                                            "--similarity-skip", "0.5", "--threads", "1", "--passthrough", "--model", "/m",
                                            "--control", "/c.safetensors", "--control-strength", "0.5",
                                            "--control-refresh-interval", "4", "--no-temporal", "--working-scale", "0.5",
                                            "--conditioning-server", "http://127.0.0.1:8080", "--conditioning-model", "nano"])
        XCTAssertEqual(Set(all.properties.map(\.name)), writable, "every option reaches its property")
    }

    // MARK: pipeline descriptions

    /// The served pipeline with non-default element options parses (every element, property
    /// and enum value exists) and the element gets exactly the values given, including a
    /// prompt that needs quoting.
    func testServedPipelineParsesAndCarriesTheElementOptions() throws {
        let prompt = #"a "quoted" prompt, with commas; \ and ( parentheses )"#
        let stylize = try StylizeOptions.parse([
            "--prompt", prompt, "--batch-size", "3", "--max-batch-wait", "150", "--steps", "2", "--strength", "0.25",
            "--seed", "7", "--no-fixed-noise", "--similarity-skip", "0.05", "--refresh-interval", "12", "--threads", "1",
            "--model", "/models/some folder",
        ])
        let installed = H264Encoder.known.filter { elementIsInstalled($0.factory) }
        try XCTSkipIf(installed.isEmpty, "no H.264 encoder installed")
        for encoder in installed {
            let description = PipelineDescriptions.served(format: ServedFormat(width: 320, height: 240, framerate: 30),
                                                          stylize: stylize, encoder: encoder, kbps: 800)
            let bin = try parse(description)
            defer { gst_object_unref(bin) }
            let element = try XCTUnwrap(childElement(bin, named: "stylize"))
            defer { gst_object_unref(element) }
            XCTAssertEqual(stringProperty(element, "prompt"), prompt)
            XCTAssertEqual(stringProperty(element, "model"), "/models/some folder")
            for (name, expected) in [("batch-size", "3"), ("max-batch-wait", "150"), ("steps", "2"), ("seed", "7"),
                                     ("fixed-noise", "false"), ("refresh-interval", "12"), ("threads", "1")] {
                XCTAssertEqual(serializedProperty(element, name), expected, name)
            }
            for (name, expected) in [("strength", 0.25), ("similarity-skip", 0.05)] {
                XCTAssertEqual(Double(serializedProperty(element, name) ?? "") ?? -1, expected, accuracy: 1e-6, name)
            }
            XCTAssertNotNil(childElement(bin, named: "feed"))
            XCTAssertNotNil(childElement(bin, named: "pay0"), "gst-rtsp-server finds the payloader by this name")
            XCTAssertTrue(description.contains("config-interval=-1"))
            XCTAssertTrue(description.contains("caps=\"video/x-raw,format=I420,width=320,height=240,pixel-aspect-ratio=1/1,framerate=30/1\""))
            let enc = try XCTUnwrap(childElement(bin, named: "encoder"))
            defer { gst_object_unref(enc) }
            let keyInterval = encoder == .x264 ? "key-int-max" : "gop-size"
            XCTAssertEqual(serializedProperty(enc, keyInterval), "30", "\(encoder.factory): a keyframe a second")
        }
    }

    func testSourceDescriptions() throws {
        let format = ServedFormat(width: 128, height: 96, framerate: 15)
        let rtsp = PipelineDescriptions.source(.uri("rtsp://cam.local:554/live?x=1&y=2"), format: format, latencyMs: 300, transport: .tcp)
        XCTAssertTrue(rtsp.hasPrefix(#"rtspsrc location="rtsp://cam.local:554/live?x=1&y=2" latency=300 protocols=tcp ! "#), rtsp)
        XCTAssertTrue(rtsp.hasSuffix("video/x-raw,format=I420,width=128,height=96,pixel-aspect-ratio=1/1 ! appsink name=frames sync=true max-buffers=1 drop=true"), rtsp)
        XCTAssertFalse(PipelineDescriptions.source(.uri("rtsp://a/b"), format: format, transport: .auto).contains("protocols="))
        XCTAssertTrue(PipelineDescriptions.source(.uri("rtsp://a/b"), format: format, transport: .udp).contains("protocols=udp"))
        XCTAssertTrue(PipelineDescriptions.source(.uri("file:///tmp/a b.mp4"), format: format)
            .hasPrefix(#"uridecodebin uri="file:///tmp/a b.mp4" "#))
        let custom = PipelineDescriptions.source(.pipeline("videotestsrc is-live=true pattern=ball"), format: format)
        XCTAssertTrue(custom.hasPrefix("videotestsrc is-live=true pattern=ball ! videoconvert ! videoscale ! "))

        for description in [rtsp, custom] {
            let pipeline = try parse(description)
            XCTAssertNotNil(childElement(pipeline, named: "frames"))
            gst_object_unref(pipeline)
        }
    }

    /// A description that cannot work is an error at start, naming the description.
    func testSourceThatDoesNotParseIsAnInvalidSourceError() {
        let status = RelayStatus(sourceDescription: "x", served: .init(url: "", width: 2, height: 2, framerate: 1, encoder: ""), prompt: "")
        for bad in ["nosuchelement_xyz", "videotestsrc no-such-property=1", "videotestsrc pattern=nosuchpattern", "videotestsrc ! !"] {
            let feed = SourceFeed(description: PipelineDescriptions.source(.pipeline(bad), format: ServedFormat(width: 64, height: 64, framerate: 10)),
                                  latest: LatestFrame(), status: status, timeout: 1, maxDelay: 1, logger: .init(label: "test"))
            XCTAssertThrowsError(try feed.validate(shownAs: bad), bad) { error in
                guard case let RelayError.invalidSource(description, reason)? = error as? RelayError else {
                    return XCTFail("\(bad): \(error)")
                }
                XCTAssertEqual(description, bad)
                XCTAssertFalse(reason.isEmpty)
            }
        }
    }

    func testLaunchQuoting() {
        XCTAssertEqual(LaunchSyntax.quote("plain-value_1.5"), "plain-value_1.5")
        XCTAssertEqual(LaunchSyntax.quote(""), #""""#)
        XCTAssertEqual(LaunchSyntax.quote("two words"), #""two words""#)
        XCTAssertEqual(LaunchSyntax.quote(#"say "hi" \ now"#), #""say \"hi\" \\ now""#)
        XCTAssertEqual(LaunchSyntax.quote("a!b"), #""a!b""#)
    }

    // MARK: encoder

    func testEncoderChoiceFallsBackInOrderAndNamesWhatIsMissing() throws {
        XCTAssertEqual(try H264Encoder.choose("auto") { _ in true }, .x264)
        XCTAssertEqual(try H264Encoder.choose("auto") { $0 == "openh264enc" }, .openh264)
        XCTAssertEqual(try H264Encoder.choose("openh264enc") { _ in true }, .openh264)
        XCTAssertThrowsError(try H264Encoder.choose("auto") { _ in false }) { error in
            XCTAssertEqual(error as? RelayError, .noH264Encoder(tried: ["x264enc", "openh264enc"]))
            XCTAssertTrue("\(error)".contains("gstreamer1.0-plugins-ugly"))
        }
        XCTAssertThrowsError(try H264Encoder.choose("x264enc") { $0 == "openh264enc" }) { error in
            XCTAssertEqual(error as? RelayError, .noH264Encoder(tried: ["x264enc"]))
        }
        XCTAssertEqual(H264Encoder.x264.element(kbps: 500, framerate: 25),
                       "x264enc name=encoder tune=zerolatency speed-preset=ultrafast bitrate=500 key-int-max=25")
    }

    // MARK: status and control

    func testStatusJSONShape() throws {
        let status = RelayStatus(sourceDescription: "rtsp://cam/x",
                                 served: .init(url: "rtsp://127.0.0.1:8554/stylize", width: 256, height: 256, framerate: 25, encoder: "x264enc"),
                                 prompt: "")
        var json = try XCTUnwrap(JSONSerialization.jsonObject(with: status.snapshot().json()) as? [String: Any])
        XCTAssertTrue(json["active_prompt"] is NSNull, "null until the first prompt is active")
        XCTAssertTrue((json["source"] as? [String: Any])?["last_frame_age_seconds"] is NSNull)
        XCTAssertEqual((json["source"] as? [String: Any])?["state"] as? String, "connecting")

        status.stats(fps: 24.5, p50: 0.31, p95: 0.42, batchP50: 0.11, batchP95: 0.12, framesOut: 1000, skipped: 3)
        status.update {
            $0.activePrompt = "ink"
            $0.requestedPrompt = "ink"
            $0.source.state = .reconnecting
            $0.source.reconnects = 2
            $0.source.lastError = "rtspsrc0: Could not open resource"
        }
        _ = status.clientCountChanged(by: 1)
        _ = status.clientCountChanged(by: 1)
        status.frameReceived(at: monotonicSeconds())
        json = try XCTUnwrap(JSONSerialization.jsonObject(with: status.snapshot().json()) as? [String: Any])
        XCTAssertEqual(Set(json.keys), ["fps", "latency_p50", "latency_p95", "batch_seconds_p50", "batch_seconds_p95",
                                        "frames_out", "skipped", "active_prompt", "requested_prompt",
                                        "prompt_encode_seconds", "clients", "source", "served", "uptime_seconds"])
        XCTAssertEqual(json["fps"] as? Double, 24.5)
        XCTAssertEqual(json["batch_seconds_p95"] as? Double, 0.12)
        XCTAssertEqual(json["latency_p50"] as? Double, 0.31)
        XCTAssertEqual(json["latency_p95"] as? Double, 0.42)
        XCTAssertEqual(json["active_prompt"] as? String, "ink")
        XCTAssertEqual(json["clients"] as? Int, 2)
        let source = try XCTUnwrap(json["source"] as? [String: Any])
        XCTAssertEqual(source["state"] as? String, "reconnecting")
        XCTAssertEqual(source["reconnects"] as? Int, 2)
        XCTAssertEqual(source["last_error"] as? String, "rtspsrc0: Could not open resource")
        XCTAssertLessThan(try XCTUnwrap(source["last_frame_age_seconds"] as? Double), 5)
        let served = try XCTUnwrap(json["served"] as? [String: Any])
        XCTAssertEqual(served["url"] as? String, "rtsp://127.0.0.1:8554/stylize")
        XCTAssertEqual(served["encoder"] as? String, "x264enc")
        XCTAssertEqual(try JSONDecoder().decode(StatusReport.self, from: status.snapshot().json()).clients, 2)
    }

    func testPromptBodies() {
        XCTAssertEqual(try PromptRequest.parse(body: Data("a watercolor\n".utf8), contentType: "text/plain").get(), "a watercolor")
        XCTAssertEqual(try PromptRequest.parse(body: Data(#"{"prompt": "ink \"wash\""}"#.utf8), contentType: nil).get(), #"ink "wash""#)
        XCTAssertEqual(try PromptRequest.parse(body: Data(#" {"prompt":""}"#.utf8), contentType: "application/json").get(), "")
        switch PromptRequest.parse(body: Data("{not json".utf8), contentType: nil) {
        case .failure(.badJSON): break
        case let other: XCTFail("a body starting with { is JSON: \(other)")
        }
    }

    // MARK: frames

    func testBlackFrameIsVideoRangeBlackI420() throws {
        let frame = FramePump.blackFrame(ServedFormat(width: 6, height: 4, framerate: 10))
        defer { gst_buffer_unref(frame) }
        var map = GstMapInfo()
        XCTAssertNotEqual(gst_buffer_map(frame, &map, GST_MAP_READ), 0)
        defer { gst_buffer_unmap(frame, &map) }
        // GstVideoInfo's default I420 layout for 6x4: Y stride 8 (4-aligned), chroma stride 4.
        XCTAssertEqual(map.size, 8 * 4 + 4 * 2 * 2)
        let bytes = Array(UnsafeBufferPointer(start: map.data, count: Int(map.size)))
        XCTAssertEqual(Set(bytes[0..<32]), [16])
        XCTAssertEqual(Set(bytes[32...]), [128])
    }

    func testLatestFrameExpires() throws {
        let latest = LatestFrame()
        XCTAssertNil(latest.take(maxAge: 1, now: 0))
        latest.store(gst_buffer_new(), at: 10)
        let fresh = try XCTUnwrap(latest.take(maxAge: 1, now: 10.5))
        gst_buffer_unref(fresh)
        XCTAssertNil(latest.take(maxAge: 1, now: 11.5), "older than maxAge: the slate is served instead")
    }

    // MARK: helpers

    private func parse(_ description: String) throws -> UnsafeMutablePointer<GstElement> {
        var error: UnsafeMutablePointer<GError>?
        let element = gst_parse_launch_full(description, nil, GST_PARSE_FLAG_FATAL_ERRORS, &error)
        if let error {
            defer { g_error_free(error) }
            if let element { gst_object_unref(element) }
            throw skipOrFail(String(cString: error.pointee.message), description)
        }
        return try XCTUnwrap(element)
    }

    /// Missing plugins are a skip (the machine lacks them), anything else a failure.
    private func skipOrFail(_ message: String, _ description: String) -> Error {
        if message.contains("no element") { return XCTSkip("\(message) in \(description)") }
        XCTFail("\(message) in \(description)")
        return NSError(domain: "parse", code: 1)
    }

    private func stringProperty(_ element: UnsafeMutablePointer<GstElement>, _ name: String) -> String? {
        var value = GValue()
        g_value_init(&value, GType(G_TYPE_STRING_VALUE))
        defer { g_value_unset(&value) }
        g_object_get_property(UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self), name, &value)
        return g_value_get_string(&value).map { String(cString: $0) }
    }

    private func serializedProperty(_ element: UnsafeMutablePointer<GstElement>, _ name: String) -> String? {
        let object = UnsafeMutableRawPointer(element).assumingMemoryBound(to: GObject.self)
        let klass = UnsafeMutableRawPointer(object.pointee.g_type_instance.g_class!).assumingMemoryBound(to: GObjectClass.self)
        guard let spec = g_object_class_find_property(klass, name) else { return nil }
        var value = GValue()
        g_value_init(&value, spec.pointee.value_type)
        defer { g_value_unset(&value) }
        g_object_get_property(object, name, &value)
        guard let s = gst_value_serialize(&value) else { return nil }
        defer { g_free(s) }
        return String(cString: s)
    }
}

/// G_TYPE_STRING is a macro: (G_TYPE_FUNDAMENTAL_SHIFT 2) << ... = 16 << 2.
let G_TYPE_STRING_VALUE = 16 << 2
