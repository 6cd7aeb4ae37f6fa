import CGStreamer
import CShims
import Foundation

/// A gst-launch description run in this process with the `stylize` element linked in
/// (no plugin file): for `stylize-tool bench element` and the hot-path tests, which
/// measure the element as users run it.
public final class InProcessPipeline {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// gst_init (once) and the element registered from this binary. GST_PLUGIN_PATH is
    /// ignored so that a built plugin file cannot shadow the linked element.
    public static let setUp: Void = {
        unsetenv("GST_PLUGIN_PATH")
        unsetenv("GST_PLUGIN_PATH_1_0")
        gst_init(nil, nil)
        precondition(gst_stylize_register_static().isTrue, "gst_stylize_register_static failed")
    }()

    private let pipeline: UnsafeMutablePointer<GstElement>

    /// `description` must name the element whose input buffers are counted `sink`.
    public init(_ description: String) throws {
        _ = Self.setUp
        var error: UnsafeMutablePointer<GError>?
        guard let p = gst_parse_launch(description, &error) else {
            defer { g_error_free(error) }
            throw Failure(description: "cannot build '\(description)': \(error.map { String(cString: $0.pointee.message) } ?? "?")")
        }
        if g_object_is_floating(UnsafeMutableRawPointer(p)).isTrue { gst_object_ref_sink(UnsafeMutableRawPointer(p)) }
        pipeline = p
    }

    deinit {
        _ = gst_element_set_state(pipeline, GST_STATE_NULL)
        gst_object_unref(UnsafeMutableRawPointer(pipeline))
    }

    /// The element named `name` (borrowed: valid while the pipeline lives).
    public func element(_ name: String) -> UnsafeMutablePointer<GstElement>? {
        let bin = UnsafeMutableRawPointer(pipeline).assumingMemoryBound(to: GstBin.self)
        guard let e = gst_bin_get_by_name(bin, name) else { return nil }
        gst_object_unref(UnsafeMutableRawPointer(e))
        return e
    }

    private final class Counter {
        var count = 0
        let onBuffer: (Int) -> Void
        init(_ onBuffer: @escaping (Int) -> Void) { self.onBuffer = onBuffer }
    }

    /// Plays to EOS. `onBuffer(i)` runs on the streaming thread as buffer i (from 0)
    /// reaches `sink`. Returns the number of buffers; throws the first error message.
    @discardableResult
    public func run(timeout: TimeInterval = 600, onBuffer: @escaping (Int) -> Void = { _ in }) throws -> Int {
        guard let sink = element("sink"), let pad = gst_element_get_static_pad(sink, "sink") else {
            throw Failure(description: "the pipeline has no element named 'sink' with a sink pad")
        }
        let counter = Counter(onBuffer)
        let box = Unmanaged.passRetained(counter)
        let probe = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, { _, _, data in
            let c = Unmanaged<Counter>.fromOpaque(data!).takeUnretainedValue()
            c.onBuffer(c.count)
            c.count += 1
            return GST_PAD_PROBE_OK
        }, box.toOpaque(), { data in Unmanaged<Counter>.fromOpaque(data!).release() })
        defer {
            gst_pad_remove_probe(pad, probe)
            gst_object_unref(UnsafeMutableRawPointer(pad))
        }
        let bus = gst_element_get_bus(pipeline)!
        defer { gst_object_unref(UnsafeMutableRawPointer(bus)) }
        guard gst_element_set_state(pipeline, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE else {
            throw Failure(description: firstError(bus) ?? "the pipeline did not start")
        }
        let types = GstMessageType(rawValue: GST_MESSAGE_EOS.rawValue | GST_MESSAGE_ERROR.rawValue)
        let message = gst_bus_timed_pop_filtered(bus, GstClockTime(timeout * 1e9), types)
        defer { if let message { gst_mini_object_unref(upcast(message, to: GstMiniObject.self)) } }
        _ = gst_element_set_state(pipeline, GST_STATE_NULL)
        guard let message else { throw Failure(description: "no EOS within \(Int(timeout)) s") }
        if message.pointee.type == GST_MESSAGE_ERROR { throw Failure(description: errorText(message)) }
        return counter.count
    }

    private func firstError(_ bus: UnsafeMutablePointer<GstBus>) -> String? {
        guard let m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return nil }
        defer { gst_mini_object_unref(upcast(m, to: GstMiniObject.self)) }
        return errorText(m)
    }

    private func errorText(_ m: UnsafeMutablePointer<GstMessage>) -> String { parsedErrorMessage(m).text }
}
