import CGStreamer
import CGstRtspServer
@_exported import GstSupport

// Small bridges from Swift to GObject/GStreamer idioms that are macros or varargs in C.

/// g_signal_connect: `callback` is a @convention(c) function whose parameters match the
/// signal's (instance first, user data last).
@discardableResult
func connectSignal<Callback>(_ instance: UnsafeMutableRawPointer, _ signal: String, _ callback: Callback,
                             _ userData: UnsafeMutableRawPointer?) -> gulong {
    g_signal_connect_data(instance, signal, unsafeBitCast(callback, to: GCallback.self), userData, nil, GConnectFlags(rawValue: 0))
}

/// g_object_set with a value written as gst-launch would (parsed to the property's type).
func setObjectProperty(_ object: UnsafeMutableRawPointer, _ name: String, _ value: String) {
    gst_util_set_object_arg(object.assumingMemoryBound(to: GObject.self), name, value)
}

/// The element named `name` inside `bin` (a new reference), if any.
func childElement(_ bin: UnsafeMutablePointer<GstElement>, named name: String) -> UnsafeMutablePointer<GstElement>? {
    UnsafeMutableRawPointer(bin).withMemoryRebound(to: GstBin.self, capacity: 1) { gst_bin_get_by_name($0, name) }
}

/// The name of the object that posted `message`.
func messageSourceName(_ message: UnsafeMutablePointer<GstMessage>) -> String {
    guard let src = message.pointee.src, let name = src.pointee.name else { return "?" }
    return String(cString: name)
}

/// Whether an element factory of this name is installed.
func elementIsInstalled(_ factory: String) -> Bool {
    guard let f = gst_element_factory_find(factory) else { return false }
    gst_object_unref(UnsafeMutableRawPointer(f))
    return true
}

