import Foundation

/// One tensor's entry in a safetensors header.
public struct SafeTensorsEntry: Sendable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let begin: Int
    public let end: Int
}

/// A memory-mapped safetensors file with a fully validated header
/// (docs/ARCHITECTURE.md#safetensors): header length within the file and ≤ 100 MB,
/// UTF-8 JSON object, known dtypes, sizes that match shapes without overflow, offsets
/// contiguous from 0 and ending exactly at the end of the file, no duplicate names.
public final class SafeTensorsFile: Sendable {
    public let path: String
    public let entries: [String: SafeTensorsEntry]
    public let metadata: [String: String]
    private let data: Data  // mapped
    private let dataStart: Int

    public static let maxHeaderBytes = 100_000_000

    public convenience init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ModelError.fileNotFound(path: path, what: "safetensors file")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelError.invalidSafeTensors(file: path, reason: "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: data, path: path)
    }

    /// Validates and indexes a whole safetensors file held in memory (mapped or not);
    /// `path` names the file in errors.
    public init(data: Data, path: String) throws {
        self.path = path
        self.data = data
        guard data.count >= 8 else {
            throw ModelError.invalidSafeTensors(file: path, reason: "file is \(data.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = data.withUnsafeBytes { raw in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw ModelError.invalidSafeTensors(file: path, reason: "header length \(headerLength) exceeds the 100 MB limit")
        }
        guard 8 + Int(headerLength) <= data.count else {
            throw ModelError.invalidSafeTensors(file: path, reason: "header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        let start = data.startIndex
        let headerBytes = data.subdata(in: (start + 8)..<(start + 8 + Int(headerLength)))
        dataStart = 8 + Int(headerLength)
        let (entries, metadata) = try Self.parseHeader(headerBytes, file: path, dataBytes: data.count - dataStart)
        self.entries = entries
        self.metadata = metadata
    }

    public var names: [String] { entries.keys.sorted() }

    /// The tensor's values converted to Float32, in the file's (C) order.
    public func floats(_ name: String) throws -> [Float] {
        guard let e = entries[name] else { throw ModelError.missingTensor(file: path, tensor: name) }
        let count = e.shape.reduce(1, *)
        return data.withUnsafeBytes { raw -> [Float] in
            let base = raw.baseAddress! + dataStart + e.begin
            return [Float](unsafeUninitializedCapacity: count) { out, initialized in
                switch e.dtype {
                case .f32:
                    memcpy(out.baseAddress!, base, count * 4)
                case .f16:
                    for i in 0..<count { out[i] = halfToFloat(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
                case .bf16:
                    for i in 0..<count {
                        out[i] = Float(bitPattern: UInt32(base.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
                    }
                case .f64:
                    for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Double.self)) }
                case .i64:
                    for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)) }
                case .i32:
                    for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)) }
                case .i16:
                    for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)) }
                case .i8:
                    for i in 0..<count { out[i] = Float(base.loadUnaligned(fromByteOffset: i, as: Int8.self)) }
                case .u8, .bool:
                    for i in 0..<count { out[i] = Float(base.load(fromByteOffset: i, as: UInt8.self)) }
                }
                initialized = count
            }
        }
    }

    /// Integer tensors (token ids, grid sizes) without a detour through Float.
    public func int64s(_ name: String) throws -> [Int64] {
        guard let e = entries[name] else { throw ModelError.missingTensor(file: path, tensor: name) }
        let count = e.shape.reduce(1, *)
        return try data.withUnsafeBytes { raw -> [Int64] in
            let base = raw.baseAddress! + dataStart + e.begin
            switch e.dtype {
            case .i64: return (0..<count).map { base.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self) }
            case .i32: return (0..<count).map { Int64(base.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self)) }
            default:
                throw ModelError.invalidInput(name: name, reason: "\(path): expected an integer tensor, found \(e.dtype.rawValue)")
            }
        }
    }

    private static func parseHeader(_ bytes: Data, file: String, dataBytes: Int) throws
        -> ([String: SafeTensorsEntry], [String: String])
    {
        guard let text = String(data: bytes, encoding: .utf8) else {
            throw ModelError.invalidSafeTensors(file: file, reason: "header is not valid UTF-8")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [])
        } catch {
            throw ModelError.invalidSafeTensors(file: file, reason: "header is not valid JSON")
        }
        guard let object = json as? [String: Any] else {
            throw ModelError.invalidSafeTensors(file: file, reason: "header is not a JSON object")
        }
        // JSONSerialization keeps the last of duplicate keys; the format forbids them.
        let duplicates = try duplicateTopLevelKeys(text, file: file)
        if let first = duplicates.first {
            throw ModelError.invalidSafeTensors(file: file, reason: "duplicate tensor name '\(first)'")
        }
        var metadata: [String: String] = [:]
        var entries: [String: SafeTensorsEntry] = [:]
        for (name, value) in object {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw ModelError.invalidSafeTensors(file: file, reason: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw ModelError.invalidSafeTensors(file: file, reason: "__metadata__ value for '\(k)' is not a string")
                    }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any] else {
                throw ModelError.invalidSafeTensors(file: file, reason: "entry for tensor '\(name)' is not an object")
            }
            guard let dtypeName = info["dtype"] as? String else {
                throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(name)' has no dtype")
            }
            guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
                throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(name)' has unsupported dtype \(dtypeName)")
            }
            guard let shapeValues = info["shape"] as? [Any],
                  let shape = try? shapeValues.map({ try nonNegativeInt($0) }) else {
                throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(name)' has an invalid shape")
            }
            guard let offsetValues = info["data_offsets"] as? [Any], offsetValues.count == 2,
                  let begin = try? nonNegativeInt(offsetValues[0]), let end = try? nonNegativeInt(offsetValues[1]),
                  begin <= end else {
                throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(name)' has invalid data_offsets")
            }
            var bytes = dtype.byteSize
            for d in shape {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(name)' shape \(shape) overflows")
                }
                bytes = product
            }
            guard end - begin == bytes else {
                throw ModelError.invalidSafeTensors(
                    file: file, reason: "tensor '\(name)' occupies \(end - begin) bytes but \(dtypeName) \(shape) needs \(bytes)")
            }
            entries[name] = SafeTensorsEntry(name: name, dtype: dtype, shape: shape, begin: begin, end: end)
        }
        // Offsets must tile [0, dataBytes) exactly: no gaps, no overlaps, nothing past EOF.
        var cursor = 0
        for e in entries.values.sorted(by: { ($0.begin, $0.end) < ($1.begin, $1.end) }) {
            guard e.begin == cursor else {
                let reason = e.begin < cursor ? "overlaps the previous tensor" : "leaves a gap before it"
                throw ModelError.invalidSafeTensors(file: file, reason: "tensor '\(e.name)' at offset \(e.begin) \(reason)")
            }
            cursor = e.end
        }
        guard cursor == dataBytes else {
            if cursor > dataBytes {
                throw ModelError.invalidSafeTensors(
                    file: file, reason: "file is truncated: tensors need \(cursor) data bytes, only \(dataBytes) present")
            }
            throw ModelError.invalidSafeTensors(
                file: file, reason: "\(dataBytes - cursor) trailing bytes after the last tensor")
        }
        return (entries, metadata)
    }

    private static func nonNegativeInt(_ v: Any) throws -> Int {
        if let i = v as? Int, i >= 0 { return i }
        if let d = v as? Double, d >= 0, d == d.rounded(), d < 9.0e15 { return Int(d) }
        throw ModelError.invalidInput(name: "", reason: "not a non-negative integer")
    }

    /// Scans the top-level object's keys (JSONSerialization silently merges duplicates).
    private static func duplicateTopLevelKeys(_ text: String, file: String) throws -> [String] {
        var seen = Set<String>(), dups: [String] = []
        let bytes = Array(text.utf8)
        var i = 0, depth = 0
        var expectingKey = false
        while i < bytes.count {
            let ch = bytes[i]
            if ch == UInt8(ascii: "\"") {
                // Read a JSON string, honouring escapes.
                var j = i + 1
                var raw: [UInt8] = []
                while j < bytes.count && bytes[j] != UInt8(ascii: "\"") {
                    if bytes[j] == UInt8(ascii: "\\") { raw.append(bytes[j]); j += 1 }
                    if j < bytes.count { raw.append(bytes[j]) }
                    j += 1
                }
                if depth == 1 && expectingKey {
                    let quoted = "\"" + String(decoding: raw, as: UTF8.self) + "\""
                    let key = (try? JSONSerialization.jsonObject(with: Data(quoted.utf8), options: .fragmentsAllowed) as? String)
                        ?? String(decoding: raw, as: UTF8.self)
                    if !seen.insert(key).inserted { dups.append(key) }
                    expectingKey = false
                }
                i = j + 1
                continue
            }
            switch ch {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                depth += 1
                if depth == 1 && ch == UInt8(ascii: "{") { expectingKey = true }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
            case UInt8(ascii: ","):
                if depth == 1 { expectingKey = true }
            default: break
            }
            i += 1
        }
        return dups
    }
}
