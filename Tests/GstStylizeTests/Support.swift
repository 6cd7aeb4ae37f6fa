import CGStreamer
import CGstCheck
import CShims
import Foundation
import StylizeEngine
import StylizeTestSupport
import XCTest
@testable import GstStylize

// Shared plumbing for the element tests: GStreamer set-up in this process, a GstHarness
// wrapper, frame construction, property access, bus messages and subprocesses.

enum Gst {
    /// gst_init once, with a private registry and no GST_PLUGIN_PATH, so the only
    /// `stylize` in this process is the one linked into the test binary (and the test and
    /// the element share one StreamEngineFactory).
    static let initialized: Bool = {
        unsetenv("GST_PLUGIN_PATH")
        unsetenv("GST_PLUGIN_PATH_1_0")
        setenv("GST_REGISTRY", NSTemporaryDirectory() + "stylize-tests-registry-\(getpid()).bin", 1)
        gst_init(nil, nil)
        precondition(gst_stylize_register_static().isTrue, "gst_stylize_register_static failed")
        // Leak hunting: GST_TRACERS=leaks STYLIZE_TEST_GST_DEINIT=1 swift test ... makes
        // the leaks tracer report every GstObject / buffer / event still alive at exit.
        if ProcessInfo.processInfo.environment["STYLIZE_TEST_GST_DEINIT"] == "1" { atexit { gst_deinit() } }
        return true
    }()

    static func setUp() {
        _ = initialized
        TestEngine.install()
    }
}

func object<T>(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<GObject> { upcast(p, to: GObject.self) }

/// g_object_set with a string parsed to the property's type (gst_util_set_object_arg).
func setProperty<T>(_ target: UnsafeMutablePointer<T>, _ name: String, _ value: String) {
    gst_util_set_object_arg(object(target), name, value)
}

/// Reads a property into a GValue of its own type; `body` sees it before it is unset.
func withProperty<T, R>(_ target: UnsafeMutablePointer<T>, _ name: String, _ body: (UnsafeMutablePointer<GValue>) -> R) -> R {
    let obj = object(target)
    let klass = UnsafeMutableRawPointer(obj).assumingMemoryBound(to: GTypeInstance.self).pointee.g_class!
    let pspec = g_object_class_find_property(UnsafeMutableRawPointer(klass).assumingMemoryBound(to: GObjectClass.self), name)!
    var value = GValue()
    g_value_init(&value, pspec.pointee.value_type)
    g_object_get_property(obj, name, &value)
    defer { g_value_unset(&value) }
    return body(&value)
}

func stringProperty<T>(_ target: UnsafeMutablePointer<T>, _ name: String) -> String {
    withProperty(target, name) { v in g_value_get_string(v).map { String(cString: $0) } ?? "" }
}

func uintProperty<T>(_ target: UnsafeMutablePointer<T>, _ name: String) -> UInt32 {
    withProperty(target, name) { g_value_get_uint($0) }
}

func paramSpec<T>(_ target: UnsafeMutablePointer<T>, _ name: String) -> UnsafeMutablePointer<GParamSpec>? {
    let obj = object(target)
    let klass = UnsafeMutableRawPointer(obj).assumingMemoryBound(to: GTypeInstance.self).pointee.g_class!
    return g_object_class_find_property(UnsafeMutableRawPointer(klass).assumingMemoryBound(to: GObjectClass.self), name)
}

let msPerSecond: GstClockTime = 1_000_000
let second: GstClockTime = 1_000_000_000

/// A raw video format as the tests build frames in it.
struct FrameSpec {
    var format: String
    var width: Int
    var height: Int
    var fpsN: Int32 = 25
    var fpsD: Int32 = 1

    var info: GstVideoInfo {
        var info = GstVideoInfo()
        let fmt = gst_video_format_from_string(format)
        precondition(fmt != GST_VIDEO_FORMAT_UNKNOWN, "unknown format \(format)")
        _ = gst_video_info_set_format(&info, fmt, guint(width), guint(height))
        info.fps_n = fpsN
        info.fps_d = fpsD
        return info
    }

    var caps: UnsafeMutablePointer<GstCaps> {
        var i = info
        return gst_video_info_to_caps(&i)!
    }

    var frameDuration: GstClockTime { fpsN > 0 ? gst_util_uint64_scale_int(second, fpsD, fpsN) : 40 * msPerSecond }

    var planeCount: Int { Int(info.finfo.pointee.n_planes) }

    /// Bytes of visible data per row, and rows, of plane `p`.
    func planeExtent(_ p: Int) -> (rowBytes: Int, rows: Int) {
        let (cw, ch) = ((width + 1) / 2, (height + 1) / 2)
        switch format {
        case "I420": return p == 0 ? (width, height) : (cw, ch)
        case "NV12": return p == 0 ? (width, height) : (2 * cw, ch)
        case "RGB", "BGR": return (3 * width, height)
        default: return (4 * width, height)
        }
    }

    /// A frame whose visible bytes follow a pattern of (plane, x, y, index). With `padding`,
    /// rows are that many bytes longer than GStreamer's default stride, planes are spaced
    /// apart, the padding holds garbage, and a GstVideoMeta describes the layout.
    func buffer(index: Int, padding: Int = 0) -> UnsafeMutablePointer<GstBuffer> {
        var i = info
        let n = planeCount
        var offsets = [gsize](repeating: 0, count: 4)
        var strides = [gint](repeating: 0, count: 4)
        var size = 0
        withUnsafeBytes(of: i.stride) { raw in
            let s = raw.bindMemory(to: gint.self)
            for p in 0..<n {
                strides[p] = s[p] + gint(padding)
                offsets[p] = gsize(size + (padding > 0 ? 16 : 0))
                size = Int(offsets[p]) + Int(strides[p]) * planeExtent(p).rows
            }
        }
        let buffer: UnsafeMutablePointer<GstBuffer>
        if padding > 0 {
            buffer = gst_buffer_new_allocate(nil, gsize(size), nil)!
            gst_buffer_memset(buffer, 0, 0xAB, gsize(size))
            _ = gst_buffer_add_video_meta_full(buffer, GST_VIDEO_FRAME_FLAG_NONE, i.finfo.pointee.format,
                                               guint(width), guint(height), guint(n), &offsets, &strides)
        } else {
            buffer = gst_buffer_new_allocate(nil, i.size, nil)!
        }
        var frame = GstVideoFrame()
        precondition(gst_video_frame_map(&frame, &i, buffer, GST_MAP_WRITE).isTrue)
        forEachPlaneRow(&frame) { p, y, row, rowBytes in
            for x in 0..<rowBytes { row[x] = UInt8(truncatingIfNeeded: p * 11 + x * 3 + y * 5 + index * 17) }
        }
        gst_video_frame_unmap(&frame)
        return buffer
    }

    /// Calls `body(plane, y, row, rowBytes)` for every visible row of a mapped frame.
    func forEachPlaneRow(_ frame: inout GstVideoFrame, _ body: (Int, Int, UnsafeMutablePointer<UInt8>, Int) -> Void) {
        let n = planeCount
        let data = withUnsafeBytes(of: frame.data) { Array($0.bindMemory(to: UnsafeMutableRawPointer?.self).prefix(n)) }
        let strides = withUnsafeBytes(of: frame.info.stride) { Array($0.bindMemory(to: gint.self).prefix(n)) }
        for p in 0..<n {
            let (rowBytes, rows) = planeExtent(p)
            let base = data[p]!.assumingMemoryBound(to: UInt8.self)
            for y in 0..<rows { body(p, y, base + y * Int(strides[p]), rowBytes) }
        }
    }

    /// The visible bytes of input frame `index` (what `buffer(index:)` fills in).
    func inputBytes(index: Int) -> [UInt8] {
        let b = buffer(index: index)
        defer { gst_buffer_unref(b) }
        return visibleBytes(b)
    }

    /// The visible bytes of a buffer in this format, plane by plane and row by row.
    func visibleBytes(_ buffer: UnsafeMutablePointer<GstBuffer>) -> [UInt8] {
        var i = info
        var frame = GstVideoFrame()
        guard gst_video_frame_map(&frame, &i, buffer, GST_MAP_READ).isTrue else { return [] }
        var out: [UInt8] = []
        forEachPlaneRow(&frame) { _, _, row, rowBytes in out.append(contentsOf: UnsafeBufferPointer(start: row, count: rowBytes)) }
        gst_video_frame_unmap(&frame)
        return out
    }
}

/// A stylize element in a GstHarness, with its own bus for element messages.
final class Harness {
    let h: UnsafeMutablePointer<GstHarness>
    let bus: UnsafeMutablePointer<GstBus>
    var element: UnsafeMutablePointer<GstElement> { h.pointee.element }
    private var tornDown = false

    struct CannotStart: Error, CustomStringConvertible { var description: String }

    /// Properties are set before the harness takes the element to PLAYING. The element is
    /// taken to READY first (loading the model): GstHarness aborts the process when a
    /// state change fails, so a model that does not load throws here instead.
    convenience init(_ properties: [(String, String)] = []) throws {
        let e = gst_element_factory_make("stylize", nil)!
        gst_object_ref_sink(UnsafeMutableRawPointer(e))
        defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
        for (k, v) in properties { setProperty(e, k, v) }
        let bus = gst_bus_new()!
        gst_element_set_bus(e, bus)
        if gst_element_set_state(e, GST_STATE_READY) != GST_STATE_CHANGE_SUCCESS {
            var text = "state change to READY failed"
            _ = waitForBusMessage(bus, GST_MESSAGE_ERROR, timeout: 0.1) { text = errorText($0).message; return true }
            _ = gst_element_set_state(e, GST_STATE_NULL)
            releaseBus(bus)
            throw CannotStart(description: text)
        }
        self.init(element: e, bus: bus)
    }

    private init(element: UnsafeMutablePointer<GstElement>, bus: UnsafeMutablePointer<GstBus>) {
        self.bus = bus
        h = gst_harness_new_with_element(element, "sink", "src")!
    }

    func teardown() {
        guard !tornDown else { return }
        tornDown = true
        gst_harness_teardown(h)
        releaseBus(bus)
    }

    deinit { teardown() }

    func setCaps(_ spec: FrameSpec) { gst_harness_set_src_caps(h, spec.caps) }

    /// Pushes frame `index` with PTS = 1 s + index × duration, DTS 1 ms before, duration,
    /// offset = index and a few flags that must come out unchanged.
    @discardableResult
    func push(_ spec: FrameSpec, index: Int, padding: Int = 0, ptsBase: GstClockTime = second) -> GstFlowReturn {
        let b = spec.buffer(index: index, padding: padding)
        Self.stamp(b, spec: spec, index: index, ptsBase: ptsBase)
        return gst_harness_push(h, b)
    }

    static func pts(_ spec: FrameSpec, index: Int, ptsBase: GstClockTime = second) -> GstClockTime {
        ptsBase + GstClockTime(index) * spec.frameDuration
    }

    static func stamp(_ b: UnsafeMutablePointer<GstBuffer>, spec: FrameSpec, index: Int, ptsBase: GstClockTime = second) {
        b.pointee.pts = pts(spec, index: index, ptsBase: ptsBase)
        b.pointee.dts = b.pointee.pts - msPerSecond
        b.pointee.duration = spec.frameDuration
        b.pointee.offset = guint64(index)
        b.pointee.mini_object.flags |= expectedFlags(index)
    }

    static func expectedFlags(_ index: Int) -> guint {
        var f: guint = 0
        if index == 0 { f |= GST_BUFFER_FLAG_DISCONT.rawValue }
        if index % 3 != 0 { f |= GST_BUFFER_FLAG_DELTA_UNIT.rawValue }
        if index % 2 == 1 { f |= GST_BUFFER_FLAG_MARKER.rawValue }
        return f
    }

    func pushEvent(_ e: UnsafeMutablePointer<GstEvent>) -> Bool { gst_harness_push_event(h, e).isTrue }

    func eos() { XCTAssertTrue(pushEvent(gst_event_new_eos())) }

    /// Waits (up to `timeout`) for the next output buffer.
    func pull(timeout: TimeInterval = 10) -> UnsafeMutablePointer<GstBuffer>? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let b = gst_harness_try_pull(h) { return b }
            usleep(1000)
        }
        return nil
    }

    /// Pulls `count` buffers (fewer if they stop coming); the caller unrefs them.
    func pull(_ count: Int, timeout: TimeInterval = 10) -> [UnsafeMutablePointer<GstBuffer>] {
        var out: [UnsafeMutablePointer<GstBuffer>] = []
        while out.count < count, let b = pull(timeout: timeout) { out.append(b) }
        return out
    }

    /// Waits for a downstream event of `type` at the harness sink pad.
    func waitForEvent(_ type: GstEventType, timeout: TimeInterval = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let e = gst_harness_try_pull_event(h) {
                let t = e.pointee.type
                gst_event_unref(e)
                if t == type { return true }
            } else {
                usleep(1000)
            }
        }
        return false
    }

    /// Pushes frames `range` and pulls as many; their visible bytes (whole batches must
    /// come out, so `range.count` is a multiple of the batch size).
    func pushAndPull(_ spec: FrameSpec, _ range: Range<Int>) -> [[UInt8]] {
        for i in range { XCTAssertEqual(push(spec, index: i), GST_FLOW_OK) }
        return pull(range.count).map { b in defer { gst_buffer_unref(b) }; return spec.visibleBytes(b) }
    }

    /// Whether a `stylize-conditioning` message for `prompt` arrives within `timeout`.
    func conditioningActivated(_ prompt: String, timeout: TimeInterval) -> Bool {
        waitForMessage(GST_MESSAGE_ELEMENT, timeout: timeout) { m in
            guard structureName(m) == "stylize-conditioning", let s = gst_message_get_structure(m),
                  let p = gst_structure_get_string(s, "prompt") else { return false }
            return String(cString: p) == prompt
        }
    }

    /// Pops bus messages until one of `type` satisfies `match` (others are dropped).
    func waitForMessage(_ type: GstMessageType, timeout: TimeInterval = 5,
                        where match: (UnsafeMutablePointer<GstMessage>) -> Bool = { _ in true }) -> Bool {
        waitForBusMessage(bus, type, timeout: timeout, where: match)
    }
}

/// Element → bus → queued messages → element is a reference cycle (a pipeline breaks it
/// by flushing its bus in READY→NULL): drop the queued messages, then our reference.
func releaseBus(_ bus: UnsafeMutablePointer<GstBus>) {
    gst_bus_set_flushing(bus, 1)
    gst_object_unref(UnsafeMutableRawPointer(bus))
}

func waitForBusMessage(_ bus: UnsafeMutablePointer<GstBus>, _ type: GstMessageType, timeout: TimeInterval = 5,
                       where match: (UnsafeMutablePointer<GstMessage>) -> Bool = { _ in true }) -> Bool {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while true {
        let left = deadline.timeIntervalSinceNow
        if left <= 0 { return false }
        guard let m = gst_bus_timed_pop_filtered(bus, GstClockTime(left * 1e9), type) else { return false }
        let ok = match(m)
        gst_message_unref(m)
        if ok { return true }
    }
}

func structureName(_ m: UnsafeMutablePointer<GstMessage>) -> String? {
    gst_message_get_structure(m).flatMap { gst_structure_get_name($0) }.map { String(cString: $0) }
}

func errorText(_ m: UnsafeMutablePointer<GstMessage>) -> (domain: GQuark, code: Int32, message: String) {
    var error: UnsafeMutablePointer<GError>?
    var debug: UnsafeMutablePointer<gchar>?
    gst_message_parse_error(m, &error, &debug)
    defer { g_error_free(error); g_free(debug) }
    return (error?.pointee.domain ?? 0, error?.pointee.code ?? 0, error.map { String(cString: $0.pointee.message) } ?? "")
}

/// Records, in order, what reaches a pad: "buffer <pts>" and event names.
final class StreamLog {
    private let lock = NSLock()
    private var items: [String] = []
    var entries: [String] { lock.withLock { items } }

    func attach(to pad: UnsafeMutablePointer<GstPad>) {
        let types = GST_PAD_PROBE_TYPE_BUFFER.rawValue | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM.rawValue
            | GST_PAD_PROBE_TYPE_EVENT_FLUSH.rawValue
        _ = gst_pad_add_probe(pad, GstPadProbeType(rawValue: types), { _, info, data in
            guard let info, let data else { return GST_PAD_PROBE_OK }
            let log = Unmanaged<StreamLog>.fromOpaque(data).takeUnretainedValue()
            if info.pointee.type.rawValue & GST_PAD_PROBE_TYPE_BUFFER.rawValue != 0 {
                let b = info.pointee.data.assumingMemoryBound(to: GstBuffer.self)
                log.append("buffer \(b.pointee.pts)")
            } else if let d = info.pointee.data {
                let e = d.assumingMemoryBound(to: GstEvent.self)
                log.append(String(cString: gst_event_type_get_name(e.pointee.type)))
            }
            return GST_PAD_PROBE_OK
        }, Unmanaged.passUnretained(self).toOpaque(), nil)
    }

    private func append(_ s: String) { lock.withLock { items.append(s) } }
}

/// The folder holding libgststylize.so (the test binary is built beside it).
func buildDirectory() -> URL {
    URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
}

/// Runs a GStreamer command-line tool against the freshly built plugin, with a private
/// registry. Returns nil when the tool is not installed.
func runGstTool(_ tool: String, _ arguments: [String], timeout: TimeInterval = 60,
                environment extra: [String: String] = [:]) throws -> ProcessResult? {
    let path = ["/usr/bin", "/usr/local/bin", "/bin"].map { "\($0)/\(tool)" }
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    guard let path else { return nil }
    var env = ProcessInfo.processInfo.environment
    env["GST_PLUGIN_PATH"] = buildDirectory().path
    env.removeValue(forKey: "GST_PLUGIN_PATH_1_0")
    env["GST_REGISTRY"] = NSTemporaryDirectory() + "stylize-tools-registry-\(getpid()).bin"
    for (k, v) in extra { env[k] = v }
    return try runProcess(path, arguments, environment: env, timeout: timeout)
}

/// A value shared between threads.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ value: T) { _value = value }
    var value: T {
        get { lock.withLock { _value } }
        set { lock.withLock { _value = newValue } }
    }
    func update(_ body: (inout T) -> Void) { lock.withLock { body(&_value) } }
}

/// The real engine behind the element (instead of TestEngine's stand-in) and a tiny DDIM
/// folder that predicts the sample; `restore()`, deferred by the caller, puts the
/// factory back and removes the folder.
struct RealEngineFixture {
    let model: String
    private let savedFactory = StreamEngineFactory.make

    init(mode: ConditioningMode) throws {
        model = try TinyModelFolder.make(mode: mode, scheduler: "DDIMScheduler",
                                         schedulerExtra: #", "prediction_type": "sample""#)
        StylizeEngine.installAsDefaultFactory()
    }

    func restore() {
        StreamEngineFactory.make = savedFactory
        try? FileManager.default.removeItem(atPath: model)
    }
}
