import CGStreamer
import CShims
import StylizeProperties

/// The property table (ElementProperty) as GObject sees it: GParamSpecs installed in
/// class_init, and values moved between GValues and PropertyValues.
enum PropertyBridge {
    static func install(_ klass: UnsafeMutablePointer<GObjectClass>) {
        for p in ElementProperty.allCases {
            g_object_class_install_property(klass, guint(p.rawValue), paramSpec(p.spec))
        }
    }

    private static func paramSpec(_ s: PropertySpec) -> UnsafeMutablePointer<GParamSpec> {
        let flags = stylize_param_flags((s.mutability != .readOnly).gboolean, (s.mutability == .playing).gboolean)
        switch s.kind {
        case .string(let d):
            return g_param_spec_string(s.name, s.nick, s.blurb, d ?? Settings.defaultModelPath(), flags)
        case .uint(let r, let d):
            return g_param_spec_uint(s.name, s.nick, s.blurb, r.lowerBound, r.upperBound, d, flags)
        case .uint64(let d):
            return g_param_spec_uint64(s.name, s.nick, s.blurb, 0, guint64.max, guint64(d), flags)
        case .float(let r, let d):
            return g_param_spec_float(s.name, s.nick, s.blurb, r.lowerBound, r.upperBound, d, flags)
        case .bool(let d):
            return g_param_spec_boolean(s.name, s.nick, s.blurb, d.gboolean, flags)
        case .structure:
            return g_param_spec_boxed(s.name, s.nick, s.blurb, gst_structure_get_type(), flags)
        }
    }

    /// The GValue's content as a value of property `p` (GObject has checked its type).
    static func read(_ value: UnsafePointer<GValue>, as p: ElementProperty) -> PropertyValue? {
        switch p.spec.kind {
        case .string: return .string(g_value_get_string(value).map { String(cString: $0) } ?? "")
        case .uint: return .uint(g_value_get_uint(value))
        case .uint64: return .uint64(UInt64(g_value_get_uint64(value)))
        case .float: return .float(g_value_get_float(value))
        case .bool: return .bool(g_value_get_boolean(value).isTrue)
        case .structure: return nil
        }
    }

    static func write(_ v: PropertyValue, into value: UnsafeMutablePointer<GValue>) {
        switch v {
        case .string(let s): g_value_set_string(value, s)
        case .uint(let n): g_value_set_uint(value, n)
        case .uint64(let n): g_value_set_uint64(value, guint64(n))
        case .float(let f): g_value_set_float(value, f)
        case .bool(let b): g_value_set_boolean(value, b.gboolean)
        }
    }
}
