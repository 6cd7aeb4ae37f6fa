import Foundation

/// One node of a tokenizer.json (or vocab.json) together with the key path that leads to
/// it, so every error names the file and the exact key (`pre_tokenizer.pretokenizers[1].type`).
///
/// Parsed with JSONSerialization rather than `JSONValue`: a real tokenizer.json holds
/// ~100k vocabulary and merge strings, and JSONSerialization reads it about 6x faster.
struct TokenizerJSON {
    let file: String
    let path: String
    let value: Any

    init(file: String, path: String, value: Any) {
        self.file = file
        self.path = path
        self.value = value
    }

    /// Parses a whole file; anything but a JSON object at the root is an error naming the file.
    static func load(file: String, what: String) throws -> TokenizerJSON {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ModelError.fileNotFound(path: file, what: what)
        }
        return try parse(data, file: file)
    }

    static func parse(_ data: Data, file: String) throws -> TokenizerJSON {
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw ModelError.invalidConfig(file: file, key: "(root)", reason: "not valid JSON")
        }
        let node = TokenizerJSON(file: file, path: "", value: root)
        _ = try node.object()
        return node
    }

    var isNull: Bool { value is NSNull }

    private func key(_ k: String) -> String { path.isEmpty ? k : "\(path).\(k)" }

    func error(_ reason: String) -> ModelError {
        .invalidConfig(file: file, key: path.isEmpty ? "(root)" : path, reason: reason)
    }

    func object() throws -> [String: Any] {
        guard let o = value as? [String: Any] else { throw error("expected a JSON object, found \(Self.describe(value))") }
        return o
    }

    func array() throws -> [TokenizerJSON] {
        guard let a = value as? [Any] else { throw error("expected a JSON list, found \(Self.describe(value))") }
        return a.enumerated().map { TokenizerJSON(file: file, path: "\(path)[\($0.offset)]", value: $0.element) }
    }

    func stringValue() throws -> String {
        guard let s = value as? String else { throw error("expected a string, found \(Self.describe(value))") }
        return s
    }

    func intValue() throws -> Int {
        // NSNumber also bridges booleans to Int; reject those explicitly.
        if let n = value as? NSNumber, !Self.isBool(n), let i = value as? Int { _ = n; return i }
        throw error("expected an integer, found \(Self.describe(value))")
    }

    /// The child at `k`; nil when absent or JSON null (tokenizers treats both as "default").
    func child(_ k: String) throws -> TokenizerJSON? {
        guard let v = try object()[k], !(v is NSNull) else { return nil }
        return TokenizerJSON(file: file, path: key(k), value: v)
    }

    func required(_ k: String) throws -> TokenizerJSON {
        guard let c = try child(k) else {
            throw ModelError.invalidConfig(file: file, key: key(k), reason: "missing")
        }
        return c
    }

    func string(_ k: String) throws -> String { try required(k).stringValue() }
    func optionalString(_ k: String) throws -> String? { try child(k)?.stringValue() }
    func int(_ k: String) throws -> Int { try required(k).intValue() }
    func optionalInt(_ k: String) throws -> Int? { try child(k)?.intValue() }

    func bool(_ k: String, _ fallback: Bool) throws -> Bool {
        guard let c = try child(k) else { return fallback }
        if let n = c.value as? NSNumber, Self.isBool(n) { return n.boolValue }
        if let b = c.value as? Bool { return b }
        throw c.error("expected true or false, found \(Self.describe(c.value))")
    }

    /// The component's `type`, required for every normalizer, pre-tokenizer, model,
    /// post-processor and decoder.
    func type() throws -> String { try string("type") }

    /// An error for a component whose `type` this port does not implement.
    func unsupportedType(_ kind: String, _ type: String) -> ModelError {
        .unsupported(file: file, key: key("type"), value: "\"\(type)\" (unknown \(kind) type)")
    }

    static func isBool(_ n: NSNumber) -> Bool {
        #if canImport(Darwin)
        return CFGetTypeID(n) == CFBooleanGetTypeID()
        #else
        // swift-corelibs-foundation keeps the objCType of a parsed true/false as "c" (Bool).
        return String(cString: n.objCType) == "c"
        #endif
    }

    static func describe(_ v: Any) -> String {
        switch v {
        case is NSNull: return "null"
        case let s as String: return "\"\(s.prefix(40))\""
        case let n as NSNumber: return isBool(n) ? (n.boolValue ? "true" : "false") : "\(n)"
        case is [Any]: return "a list"
        case is [String: Any]: return "an object"
        default: return "\(v)"
        }
    }
}
