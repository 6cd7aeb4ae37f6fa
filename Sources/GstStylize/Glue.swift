import CGStreamer
import CShims
import Foundation
@_exported import GstSupport

// Small bridges for what GStreamer expresses with C macros: pointer up-casts along the
// GObject hierarchy, mini-object ownership, logging and error messages.

let gstTrue: gboolean = 1
let gstFalse: gboolean = 0
/// GST_CLOCK_TIME_NONE
let clockTimeNone = GstClockTime.max
let nanosecondsPerSecond: GstClockTime = 1_000_000_000

/// gst_buffer_make_writable (a macro): returns a buffer the caller may write, the same one
/// when it was writable already (ownership of `buffer` passes in, of the result out).
func makeWritable(_ buffer: UnsafeMutablePointer<GstBuffer>) -> UnsafeMutablePointer<GstBuffer> {
    let obj = gst_mini_object_make_writable(upcast(buffer, to: GstMiniObject.self))!
    return upcast(obj, to: GstBuffer.self)
}

/// GST_EVENT_IS_SERIALIZED
func isSerialized(_ event: UnsafeMutablePointer<GstEvent>) -> Bool {
    event.pointee.type.rawValue & GST_EVENT_TYPE_SERIALIZED.rawValue != 0
}

func flowName(_ ret: GstFlowReturn) -> String {
    gst_flow_get_name(ret).map { String(cString: $0) } ?? "flow \(ret.rawValue)"
}

/// Logging on the `stylize` debug category (GST_DEBUG=stylize:5). The message is only
/// built when the level is enabled.
func log(_ level: GstDebugLevel, _ object: UnsafeMutablePointer<GstElement>?,
         _ message: @autoclosure () -> String,
         file: String = #fileID, function: String = #function, line: Int = #line) {
    guard stylize_log_enabled(level).isTrue else { return }
    stylize_log(level, object.map { upcast($0, to: GObject.self) }, file, function, Int32(line), message())
}

enum ErrorKind {
    case resourceNotFound, resourceOpenRead, resourceSettings, libraryInit, libraryFailed,
         streamFailed, streamFormat, coreNegotiation, coreFailed

    var domainAndCode: (StylizeErrorDomain, Int32) {
        switch self {
        case .resourceNotFound: return (STYLIZE_ERROR_RESOURCE, Int32(GST_RESOURCE_ERROR_NOT_FOUND.rawValue))
        case .resourceOpenRead: return (STYLIZE_ERROR_RESOURCE, Int32(GST_RESOURCE_ERROR_OPEN_READ.rawValue))
        case .resourceSettings: return (STYLIZE_ERROR_RESOURCE, Int32(GST_RESOURCE_ERROR_SETTINGS.rawValue))
        case .libraryInit: return (STYLIZE_ERROR_LIBRARY, Int32(GST_LIBRARY_ERROR_INIT.rawValue))
        case .libraryFailed: return (STYLIZE_ERROR_LIBRARY, Int32(GST_LIBRARY_ERROR_FAILED.rawValue))
        case .streamFailed: return (STYLIZE_ERROR_STREAM, Int32(GST_STREAM_ERROR_FAILED.rawValue))
        case .streamFormat: return (STYLIZE_ERROR_STREAM, Int32(GST_STREAM_ERROR_FORMAT.rawValue))
        case .coreNegotiation: return (STYLIZE_ERROR_CORE, Int32(GST_CORE_ERROR_NEGOTIATION.rawValue))
        case .coreFailed: return (STYLIZE_ERROR_CORE, Int32(GST_CORE_ERROR_FAILED.rawValue))
        }
    }
}

/// GST_ELEMENT_ERROR / GST_ELEMENT_WARNING.
func postElementMessage(_ element: UnsafeMutablePointer<GstElement>, _ type: GstMessageType,
                        _ kind: ErrorKind, text: String, debug: String? = nil,
                        file: String = #fileID, function: String = #function, line: Int = #line) {
    let (domain, code) = kind.domainAndCode
    stylize_element_message(element, type, domain, code, text, debug, file, function, Int32(line))
}

/// Owns one reference to a GstBuffer until `take()` hands it on.
final class BufferRef {
    private(set) var buffer: UnsafeMutablePointer<GstBuffer>?
    init(_ buffer: UnsafeMutablePointer<GstBuffer>) { self.buffer = buffer }
    func take() -> UnsafeMutablePointer<GstBuffer>? {
        defer { buffer = nil }
        return buffer
    }
    deinit { if let buffer { gst_buffer_unref(buffer) } }
}

/// Owns one reference to a GstEvent until `take()` hands it on.
final class EventRef {
    private(set) var event: UnsafeMutablePointer<GstEvent>?
    let type: GstEventType
    init(_ event: UnsafeMutablePointer<GstEvent>) {
        self.event = event
        self.type = event.pointee.type
    }
    func take() -> UnsafeMutablePointer<GstEvent>? {
        defer { event = nil }
        return event
    }
    deinit { if let event { gst_event_unref(event) } }
}

/// A DRAIN query waiting for everything queued before it: signalled when the worker
/// reaches it, or when a flush / stop drops it from the queue (its deinit).
final class DrainToken {
    private let condition = NSCondition()
    private var done = false

    final class Marker {
        let token: DrainToken
        init(_ token: DrainToken) { self.token = token }
        deinit { token.signal() }
    }

    func signal() { condition.withLock { done = true; condition.broadcast() } }
    func wait() { condition.withLock { while !done { condition.wait() } } }
}
