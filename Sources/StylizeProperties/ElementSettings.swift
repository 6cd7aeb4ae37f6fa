/// The values of the element's writable properties (gst-plugins-rs' `Settings`): one value,
/// written under the element's settings lock and copied whole at each batch boundary.
/// Every property starts at its table default; the ones set explicitly are remembered, so
/// that properties marked `modelDefault` can fall back to the loaded model's values.
public struct ElementSettings: Sendable, Equatable {
    private var values: [PropertyValue?]
    public private(set) var explicitlySet: Set<ElementProperty> = []

    /// `model`: the computed default folder (the table cannot know it).
    public init(defaultModel: String = "") {
        values = ElementProperty.allCases.map { $0.spec.defaultValue }
        values[ElementProperty.model.index] = .string(defaultModel)
    }

    public subscript(_ p: ElementProperty) -> PropertyValue? { values[p.index] }

    /// Stores `value` (clamped to the property's range). Returns whether it changed.
    @discardableResult
    public mutating func set(_ p: ElementProperty, _ value: PropertyValue) -> Bool {
        let v = p.spec.clamped(value)
        explicitlySet.insert(p)
        defer { values[p.index] = v }
        return values[p.index] != v
    }

    public func string(_ p: ElementProperty) -> String {
        if case .string(let s)? = self[p] { return s }
        preconditionFailure("\(p.spec.name) is not a string property")
    }

    public func int(_ p: ElementProperty) -> Int {
        if case .uint(let v)? = self[p] { return Int(v) }
        preconditionFailure("\(p.spec.name) is not a uint property")
    }

    public func uint64(_ p: ElementProperty) -> UInt64 {
        if case .uint64(let v)? = self[p] { return v }
        preconditionFailure("\(p.spec.name) is not a uint64 property")
    }

    public func float(_ p: ElementProperty) -> Float {
        if case .float(let v)? = self[p] { return v }
        preconditionFailure("\(p.spec.name) is not a float property")
    }

    public func bool(_ p: ElementProperty) -> Bool {
        if case .bool(let v)? = self[p] { return v }
        preconditionFailure("\(p.spec.name) is not a boolean property")
    }

    /// Milliseconds as seconds; nil when `max-batch-wait` is 0 (off).
    public var maxBatchWaitSeconds: Double? {
        let ms = int(.maxBatchWait)
        return ms > 0 ? Double(ms) / 1000 : nil
    }
}

extension ElementProperty {
    var index: Int { rawValue - 1 }

    /// The table default of a uint / float property, for code that keeps its own typed copy.
    public var defaultInt: Int { if case .uint(_, let d) = spec.kind { return Int(d) }; preconditionFailure("\(spec.name)") }
    public var defaultFloat: Float { if case .float(_, let d) = spec.kind { return d }; preconditionFailure("\(spec.name)") }
}

/// The README's table of element properties, made from the property table (a test keeps
/// the README's copy equal to it).
public enum PropertyTableMarkdown {
    public static func render() -> String {
        var lines = ["| property | range, default | when |", "|---|---|---|"]
        for p in ElementProperty.allCases {
            let s = p.spec
            lines.append("| `\(s.name)` | \(rangeAndDefault(s)) | \(s.readme.when) |")
        }
        return lines.joined(separator: "\n")
    }

    private static func rangeAndDefault(_ s: PropertySpec) -> String {
        let note = s.readme.note
        func with(_ text: String) -> String { note.isEmpty ? text : "\(text); \(note)" }
        switch s.kind {
        case .string(nil): return "folder; default " + note
        case .string(let d?): return "string, `\"\(d)\"` (\(note))"
        case .uint(let r, let d):
            // A unit ("frames") reads before the range, a remark after it.
            let unit = note.contains(" ") || note.isEmpty ? "" : note + " "
            let text = "\(unit)\(r.lowerBound)–\(r.upperBound), \(d)"
            return unit.isEmpty ? with(text) : text
        case .float(let r, let d): return with("\(r.lowerBound.formatted)–\(r.upperBound.formatted), \(d.formatted)")
        case .uint64(let d): return with("uint64, \(d)")
        case .bool(let d): return with("bool, \(d)")
        case .structure: return "read-only GstStructure: " + note
        }
    }
}
