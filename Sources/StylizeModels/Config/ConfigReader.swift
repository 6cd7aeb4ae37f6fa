import Foundation

/// Typed access to a `config.json`, with diffusers' defaults supplied by the caller and
/// errors that name the file and key. JSON `null` and an absent key both mean "default".
public struct ConfigReader {
    public let file: String
    public let object: [String: JSONValue]

    public init(file: String) throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ModelError.fileNotFound(path: file, what: "config")
        }
        try self.init(data: data, file: file)
    }

    public init(object: [String: JSONValue], file: String) {
        self.file = file
        self.object = object
    }

    public init(data: Data, file: String) throws {
        guard case .object(let object)? = try? JSONValue.parse(data) else {
            throw ModelError.invalidConfig(file: file, key: "(root)", reason: "not a JSON object")
        }
        self.file = file
        self.object = object
    }

    private func value(_ key: String) -> JSONValue? {
        guard let v = object[key], v != .null else { return nil }
        return v
    }

    public func has(_ key: String) -> Bool { value(key) != nil }

    public func int(_ key: String, _ fallback: Int) throws -> Int { try optionalInt(key) ?? fallback }

    /// A size, count or head number: present or not, it must be at least 1 (such values
    /// divide others; zero or a negative would trap there instead of naming the key).
    public func positiveInt(_ key: String, _ fallback: Int) throws -> Int {
        let v = try int(key, fallback)
        guard v >= 1 else { throw ModelError.invalidConfig(file: file, key: key, reason: "must be at least 1, is \(v)") }
        return v
    }

    public func optionalInt(_ key: String) throws -> Int? {
        guard let v = value(key) else { return nil }
        return try asInt(v, key)
    }

    public func float(_ key: String, _ fallback: Float) throws -> Float {
        guard let v = value(key) else { return fallback }
        if case .double(let d) = v { return Float(d) }
        if case .int(let i) = v { return Float(i) }
        throw ModelError.invalidConfig(file: file, key: key, reason: "expected a number, found \(v)")
    }

    /// Full precision, for values that diffusers feeds through Python float math before
    /// rounding to float32 (scheduler betas, shifts): reading them as Float first would
    /// round twice and move the schedule by an ulp.
    public func double(_ key: String, _ fallback: Double) throws -> Double { try optionalDouble(key) ?? fallback }

    public func optionalDouble(_ key: String) throws -> Double? {
        guard let v = value(key) else { return nil }
        if case .double(let d) = v { return d }
        if case .int(let i) = v { return Double(i) }
        throw ModelError.invalidConfig(file: file, key: key, reason: "expected a number, found \(v)")
    }

    public func bool(_ key: String, _ fallback: Bool) throws -> Bool {
        guard let v = value(key) else { return fallback }
        if case .bool(let b) = v { return b }
        throw ModelError.invalidConfig(file: file, key: key, reason: "expected true or false, found \(v)")
    }

    public func string(_ key: String, _ fallback: String) throws -> String { try optionalString(key) ?? fallback }

    public func optionalString(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        if case .string(let s) = v { return s }
        throw ModelError.invalidConfig(file: file, key: key, reason: "expected a string, found \(v)")
    }

    public func strings(_ key: String, _ fallback: [String]) throws -> [String] {
        guard let v = value(key) else { return fallback }
        guard case .array(let a) = v else {
            throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of strings")
        }
        return try a.map {
            guard case .string(let s) = $0 else {
                throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of strings, found \($0)")
            }
            return s
        }
    }

    public func ints(_ key: String, _ fallback: [Int]) throws -> [Int] {
        guard let v = value(key) else { return fallback }
        guard case .array(let a) = v else {
            throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of integers")
        }
        return try a.map { try asInt($0, key) }
    }

    public func floats(_ key: String, _ fallback: [Float]) throws -> [Float] {
        guard let v = value(key) else { return fallback }
        guard case .array(let a) = v else {
            throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of numbers")
        }
        return try a.map {
            switch $0 {
            case .double(let d): return Float(d)
            case .int(let i): return Float(i)
            default: throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of numbers, found \($0)")
            }
        }
    }

    /// A key that diffusers accepts either as one int for every block or as a per-block list.
    public func intPerBlock(_ key: String, _ fallback: Int?, blocks: Int) throws -> [Int]? {
        guard let v = value(key) else { return fallback.map { Array(repeating: $0, count: blocks) } }
        if case .array(let a) = v {
            let list = try a.map { try asInt($0, key) }
            guard list.count == blocks else {
                throw ModelError.invalidConfig(file: file, key: key, reason: "has \(list.count) entries for \(blocks) blocks")
            }
            return list
        }
        return Array(repeating: try asInt(v, key), count: blocks)
    }

    /// Same for booleans (`only_cross_attention`).
    public func boolPerBlock(_ key: String, _ fallback: Bool, blocks: Int) throws -> [Bool] {
        guard let v = value(key) else { return Array(repeating: fallback, count: blocks) }
        if case .bool(let b) = v { return Array(repeating: b, count: blocks) }
        guard case .array(let a) = v, a.count == blocks else {
            throw ModelError.invalidConfig(file: file, key: key, reason: "expected a bool or \(blocks) bools")
        }
        return try a.map {
            guard case .bool(let b) = $0 else {
                throw ModelError.invalidConfig(file: file, key: key, reason: "expected a bool or \(blocks) bools")
            }
            return b
        }
    }

    /// Nested per-block lists (`reverse_transformer_layers_per_block`, SDXL style).
    public func nestedInts(_ key: String) throws -> [[Int]]? {
        guard let v = value(key) else { return nil }
        guard case .array(let outer) = v else {
            throw ModelError.invalidConfig(file: file, key: key, reason: "expected a list of lists of integers")
        }
        return try outer.map { inner in
            if case .array(let list) = inner { return try list.map { try asInt($0, key) } }
            return [try asInt(inner, key)]
        }
    }

    private func asInt(_ v: JSONValue, _ key: String) throws -> Int {
        if case .int(let i) = v { return i }
        if case .double(let d) = v, d == d.rounded() {
            // 1e300 is integral too, but no Int holds it.
            guard let i = Int(exactly: d) else {
                throw ModelError.invalidConfig(file: file, key: key, reason: "\(d) is out of the integer range")
            }
            return i
        }
        throw ModelError.invalidConfig(file: file, key: key, reason: "expected an integer, found \(v)")
    }

    public func raw(_ key: String) -> JSONValue? { value(key) }

    public func unsupported(_ key: String, _ value: Any) -> ModelError {
        ModelError.unsupported(file: file, key: key, value: "\(value)")
    }
}
