import CGStreamer
import CShims
import Foundation
import StylizeEngine

// The functions the C shim (CShims/gststylize.c) calls, declared for C in
// CShims/stylize-swift.h. Ownership follows GStreamer's pad-function rules: chain and
// event functions receive a reference they must consume; queries are borrowed.

@_cdecl("stylize_swift_plugin_init")
func stylizePluginInit(_ plugin: OpaquePointer?) {
    // The real loader (one shared model per folder); tests may replace it after registering.
    StylizeEngine.installAsDefaultFactory()
}

@_cdecl("stylize_swift_install_properties")
func stylizeInstallProperties(_ klass: UnsafeMutablePointer<GObjectClass>) {
    PropertyBridge.install(klass)
}

@_cdecl("stylize_swift_instance_init")
func stylizeInstanceInit(_ raw: UnsafeMutablePointer<GstStylize>) -> UnsafeMutableRawPointer {
    Unmanaged.passRetained(StylizeElement(raw)).toOpaque()
}

@_cdecl("stylize_swift_dispose")
func stylizeDispose(_ raw: UnsafeMutablePointer<GstStylize>) {
    StylizeElement.from(raw)?.dispose()
}

@_cdecl("stylize_swift_finalize")
func stylizeFinalize(_ raw: UnsafeMutablePointer<GstStylize>) {
    guard let impl = raw.pointee.impl else { return }
    let unmanaged = Unmanaged<StylizeElement>.fromOpaque(impl)
    unmanaged.takeUnretainedValue().finalize()
    unmanaged.release()
}

@_cdecl("stylize_swift_chain")
func stylizeChain(_ raw: UnsafeMutablePointer<GstStylize>, _ buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn {
    guard let e = StylizeElement.from(raw) else {
        gst_buffer_unref(buffer)
        return GST_FLOW_ERROR
    }
    return e.chain(buffer)
}

@_cdecl("stylize_swift_sink_event")
func stylizeSinkEvent(_ raw: UnsafeMutablePointer<GstStylize>, _ event: UnsafeMutablePointer<GstEvent>) -> gboolean {
    guard let e = StylizeElement.from(raw) else {
        gst_event_unref(event)
        return gstFalse
    }
    return e.sinkEvent(event).gboolean
}

@_cdecl("stylize_swift_sink_query")
func stylizeSinkQuery(_ raw: UnsafeMutablePointer<GstStylize>, _ query: UnsafeMutablePointer<GstQuery>) -> gboolean {
    (StylizeElement.from(raw)?.sinkQuery(query) ?? false).gboolean
}

@_cdecl("stylize_swift_src_query")
func stylizeSrcQuery(_ raw: UnsafeMutablePointer<GstStylize>, _ query: UnsafeMutablePointer<GstQuery>) -> gboolean {
    (StylizeElement.from(raw)?.srcQuery(query) ?? false).gboolean
}

@_cdecl("stylize_swift_src_activate_mode")
func stylizeSrcActivateMode(_ raw: UnsafeMutablePointer<GstStylize>, _ mode: GstPadMode, _ active: gboolean) -> gboolean {
    (StylizeElement.from(raw)?.srcActivateMode(mode, active: active.isTrue) ?? false).gboolean
}

@_cdecl("stylize_swift_change_state")
func stylizeChangeState(_ raw: UnsafeMutablePointer<GstStylize>, _ transition: GstStateChange) -> GstStateChangeReturn {
    guard let e = StylizeElement.from(raw) else { return GST_STATE_CHANGE_FAILURE }
    return e.changeState(transition)
}

@_cdecl("stylize_swift_set_property")
func stylizeSetProperty(_ raw: UnsafeMutablePointer<GstStylize>, _ id: guint, _ value: UnsafePointer<GValue>) -> gboolean {
    (StylizeElement.from(raw)?.setProperty(id, value) ?? true).gboolean
}

@_cdecl("stylize_swift_get_property")
func stylizeGetProperty(_ raw: UnsafeMutablePointer<GstStylize>, _ id: guint, _ value: UnsafeMutablePointer<GValue>) -> gboolean {
    (StylizeElement.from(raw)?.getProperty(id, value) ?? true).gboolean
}
