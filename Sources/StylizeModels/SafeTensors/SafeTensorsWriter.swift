import Foundation

/// Writes safetensors files (CLI outputs, random-weight model folders, test inputs).
public struct SafeTensorsWriter {
    public enum Values {
        case f32([Float])
        case f16([Float])  // stored as IEEE half
        case i64([Int64])
    }

    public struct Item {
        public let name: String
        public let shape: [Int]
        public let values: Values
        public init(name: String, shape: [Int], values: Values) {
            self.name = name
            self.shape = shape
            self.values = values
        }
        public init(name: String, tensor: Tensor, half: Bool = false) {
            self.init(name: name, shape: tensor.shape, values: half ? .f16(tensor.data.array) : .f32(tensor.data.array))
        }
    }

    public var items: [Item] = []
    public var metadata: [String: String] = [:]

    public init(items: [Item] = [], metadata: [String: String] = [:]) {
        self.items = items
        self.metadata = metadata
    }

    public mutating func add(_ name: String, _ tensor: Tensor, half: Bool = false) {
        items.append(Item(name: name, tensor: tensor, half: half))
    }

    /// Streams the file: header first, then each tensor's bytes, so multi-GB models
    /// never need a second in-memory copy.
    public func write(to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        var seen = Set<String>()
        for item in items {
            guard seen.insert(item.name).inserted else {
                throw ModelError.invalidInput(name: item.name, reason: "written twice to \(path)")
            }
            let (dtype, bytes): (String, Int)
            switch item.values {
            case .f32(let v): (dtype, bytes) = ("F32", 4 * v.count)
            case .f16(let v): (dtype, bytes) = ("F16", 2 * v.count)
            case .i64(let v): (dtype, bytes) = ("I64", 8 * v.count)
            }
            precondition(bytes / (dtype == "F16" ? 2 : dtype == "F32" ? 4 : 8) == item.shape.reduce(1, *),
                         "SafeTensorsWriter: \(item.name) has a shape \(item.shape) that does not match its values")
            header[item.name] = ["dtype": dtype, "shape": item.shape, "data_offsets": [offset, offset + bytes]]
            offset += bytes
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces to an 8-byte boundary so the data section stays aligned.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let handle = FileHandle(forWritingAtPath: path) else {
            throw ModelError.invalidInput(name: path, reason: "cannot create the file")
        }
        defer { try? handle.close() }
        do {
            var length = UInt64(json.count).littleEndian
            try handle.write(contentsOf: withUnsafeBytes(of: &length) { Data($0) })
            try handle.write(contentsOf: json)
            for item in items {
                switch item.values {
                case .f32(let v): try v.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
                case .f16(let v): try v.map { floatToHalf($0) }.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
                case .i64(let v): try v.withUnsafeBytes { try handle.write(contentsOf: Data($0)) }
                }
            }
        } catch {
            throw ModelError.invalidInput(name: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
