import CGStreamer

// Bridges for what GLib and GStreamer express with C macros, shared by the element
// (GstStylize) and the relay (StylizeRelay).

extension gboolean {
    public var isTrue: Bool { self != 0 }
}

extension Bool {
    public var gboolean: CGStreamer.gboolean { self ? 1 : 0 }
}

/// GObject "casts" (GST_ELEMENT (x), GST_OBJECT (x), GST_MINI_OBJECT (x)): a C struct
/// begins with its parent struct, so the address is the same.
@inline(__always)
public func upcast<T, U>(_ p: UnsafeMutablePointer<T>, to _: U.Type = U.self) -> UnsafeMutablePointer<U> {
    UnsafeMutableRawPointer(p).assumingMemoryBound(to: U.self)
}

/// The message of a GError, freeing it.
public func takeErrorMessage(_ error: UnsafeMutablePointer<GError>?) -> String? {
    guard let error else { return nil }
    defer { g_error_free(error) }
    return error.pointee.message.map { String(cString: $0) } ?? "unknown error"
}

/// An ERROR or WARNING message's text plus its debug detail.
public func parsedErrorMessage(_ message: UnsafeMutablePointer<GstMessage>) -> (text: String, debug: String?) {
    var error: UnsafeMutablePointer<GError>?
    var debug: UnsafeMutablePointer<gchar>?
    if message.pointee.type == GST_MESSAGE_WARNING {
        gst_message_parse_warning(message, &error, &debug)
    } else {
        gst_message_parse_error(message, &error, &debug)
    }
    let text = takeErrorMessage(error) ?? "unknown error"
    defer { g_free(debug) }
    return (text, debug.map { String(cString: $0) })
}
