import CGStreamer
import CGstRtspServer
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest

// Plumbing for the relay tests: paths, free ports, child processes, HTTP, and an
// in-process RTSP client that counts and measures the frames it decodes.

enum RelayPaths {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let testSource = packageRoot + "/Tests/RelayTests/rtsp-test-source.py"
    static let model = packageRoot + "/models/nano"

    /// The built executable next to the test bundle in SwiftPM's build folder.
    static var relay: String {
        let nextToTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [nextToTests, nextToTests.deletingLastPathComponent()] {
            let p = candidate.appendingPathComponent("stylize-relay").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return Bundle.main.bundleURL.deletingLastPathComponent().appendingPathComponent("stylize-relay").path
    }

    /// Debian's interpreter: python3-gi is installed for it, not for a pyenv/venv python.
    static let python = FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A TCP port nothing listens on now (bound to port 0, read back, released).
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
    }
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return UInt16(bigEndian: addr.sin_port)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; true when it held.
@discardableResult
func waitUntil(_ timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNow() + timeout
    while monotonicNow() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}

/// A child process whose output goes to a log file (read for diagnostics and readiness).
final class ChildProcess {
    let name: String
    let process = Process()
    let logPath: String

    init(name: String, executable: String, arguments: [String], environment: [String: String]? = nil) throws {
        self.name = name
        logPath = NSTemporaryDirectory() + "relay-test-\(name)-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var isRunning: Bool { process.isRunning }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds; the exit status
    /// (nil when it had to be killed).
    @discardableResult
    func stop(grace: Double = 5) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        process.terminate()
        if waitUntil(grace, { !process.isRunning }) {
            process.waitUntilExit()
            return process.terminationStatus
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return nil
    }

    /// Dies at once, as a crashed or unplugged source does.
    func crash() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(atPath: logPath)
    }
}

/// The environment for a relay run: without GST_PLUGIN_PATH (the relay must find its
/// plugin itself) and without this test process's private registry.
func relayEnvironment() -> [String: String] {
    var env = ProcessInfo.processInfo.environment
    for key in ["GST_PLUGIN_PATH", "GST_PLUGIN_PATH_1_0", "GST_REGISTRY", "GST_REGISTRY_1_0", "STYLIZE_MODEL_DIR"] {
        env.removeValue(forKey: key)
    }
    return env
}

/// Minimal synchronous HTTP.
enum HTTP {
    static func request(_ url: String, method: String = "GET", body: Data? = nil, contentType: String? = nil,
                        timeout: Double = 5) -> (status: Int, body: Data)? {
        var request = URLRequest(url: URL(string: url)!, timeoutInterval: timeout)
        request.httpMethod = method
        request.httpBody = body
        if let contentType { request.setValue(contentType, forHTTPHeaderField: "Content-Type") }
        let done = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: (Int, Data)?
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if let http = response as? HTTPURLResponse { result = (http.statusCode, data ?? Data()) }
            done.signal()
        }.resume()
        done.wait()
        return result
    }

    static func json(_ url: String) -> [String: Any]? {
        guard let r = request(url), r.status == 200 else { return nil }
        return (try? JSONSerialization.jsonObject(with: r.body)) as? [String: Any]
    }
}

/// An RTSP client pipeline in this process (rtspsrc → decode → GRAY8 → appsink) that
/// records, for each decoded frame, when it arrived and how much its luma varies: the
/// relay's black slate, restyled, is nearly flat; restyled SMPTE bars are not.
final class RTSPTestClient {
    struct Frame {
        let time: Double
        let lumaSpread: Double
    }

    let name: String
    private let pipeline: UnsafeMutablePointer<GstElement>
    private let sink: UnsafeMutablePointer<GstElement>
    private let lock = NSLock()
    private var frames: [Frame] = []
    private var size: (width: Int32, height: Int32)?
    private var failure: String?
    private var running = false
    private let finished = DispatchSemaphore(value: 0)

    static let initialized: Bool = {
        gst_init(nil, nil)
        return true
    }()

    init(name: String, url: String, transport: String) throws {
        _ = Self.initialized
        self.name = name
        let description = "rtspsrc location=\(url) latency=100 protocols=\(transport)"
            + " ! decodebin ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink sync=false max-buffers=8"
        var error: UnsafeMutablePointer<GError>?
        guard let p = gst_parse_launch(description, &error), error == nil else {
            let message = error.map { String(cString: $0.pointee.message) } ?? "?"
            throw XCTSkip("client pipeline does not parse: \(message)")
        }
        pipeline = p
        sink = UnsafeMutableRawPointer(p).withMemoryRebound(to: GstBin.self, capacity: 1) { gst_bin_get_by_name($0, "sink") }!
    }

    deinit {
        stop()
        gst_object_unref(sink)
        gst_object_unref(pipeline)
    }

    func start() {
        lock.withLock { running = true }
        gst_element_set_state(pipeline, GST_STATE_PLAYING)
        let t = Thread { [self] in pull() }
        t.name = "test-client-\(name)"
        t.start()
    }

    func stop() {
        let was = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if was { finished.wait() }
        gst_element_set_state(pipeline, GST_STATE_NULL)
    }

    var frameCount: Int { lock.withLock { frames.count } }
    var frameSize: (width: Int32, height: Int32)? { lock.withLock { size } }
    var error: String? { lock.withLock { failure } }

    func frames(since time: Double) -> [Frame] { lock.withLock { frames.filter { $0.time >= time } } }

    private func pull() {
        defer { finished.signal() }
        let appsink = UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstAppSink.self)
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(bus) }
        while lock.withLock({ running }) {
            if let sample = gst_app_sink_try_pull_sample(appsink, 100_000_000) {
                record(sample)
                gst_sample_unref(sample)
            }
            if let message = gst_bus_pop_filtered(bus, GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_EOS.rawValue)) {
                var text = "end of stream"
                if message.pointee.type == GST_MESSAGE_ERROR {
                    var err: UnsafeMutablePointer<GError>?
                    gst_message_parse_error(message, &err, nil)
                    text = err.map { String(cString: $0.pointee.message) } ?? "error"
                    if let err { g_error_free(err) }
                }
                lock.withLock { if failure == nil { failure = text } }
                gst_message_unref(message)
            }
        }
    }

    private func record(_ sample: OpaquePointer) {
        guard let caps = gst_sample_get_caps(sample), let buffer = gst_sample_get_buffer(sample) else { return }
        var info = GstVideoInfo()
        guard gst_video_info_from_caps(&info, caps) != 0 else { return }
        var map = GstMapInfo()
        guard gst_buffer_map(buffer, &map, GST_MAP_READ) != 0 else { return }
        defer { gst_buffer_unmap(buffer, &map) }
        let width = Int(info.width), height = Int(info.height)
        let stride = Int(withUnsafeBytes(of: info.stride) { $0.load(as: gint.self) })
        var sum = 0.0, sumSquares = 0.0
        for y in 0..<height {
            let row = map.data + y * stride
            for x in 0..<width {
                let v = Double(row[x])
                sum += v
                sumSquares += v * v
            }
        }
        let n = Double(width * height)
        let mean = sum / n
        let spread = max(0, sumSquares / n - mean * mean).squareRoot()
        let frame = Frame(time: monotonicNow(), lumaSpread: spread)
        lock.withLock {
            frames.append(frame)
            size = (info.width, info.height)
        }
    }
}
