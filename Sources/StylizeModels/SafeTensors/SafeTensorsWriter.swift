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
            self.init(name: name, shape: tensor.shape, values: half ? .f16(tensor.data) : .f32(tensor.data))
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

    public func write(to path: String) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var payload = Data()
        var seen = Set<String>()
        for item in items {
            guard seen.insert(item.name).inserted else {
                throw ModelError.invalidInput(name: item.name, reason: "written twice to \(path)")
            }
            let begin = payload.count
            let dtype: String
            switch item.values {
            case .f32(let v):
                precondition(v.count == item.shape.reduce(1, *))
                v.withUnsafeBytes { payload.append(contentsOf: $0) }
                dtype = "F32"
            case .f16(let v):
                precondition(v.count == item.shape.reduce(1, *))
                let halves = v.map { floatToHalf($0) }
                halves.withUnsafeBytes { payload.append(contentsOf: $0) }
                dtype = "F16"
            case .i64(let v):
                precondition(v.count == item.shape.reduce(1, *))
                v.withUnsafeBytes { payload.append(contentsOf: $0) }
                dtype = "I64"
            }
            header[item.name] = ["dtype": dtype, "shape": item.shape, "data_offsets": [begin, payload.count]]
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        // Pad with spaces to an 8-byte boundary so the data section stays aligned.
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var file = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { file.append(contentsOf: $0) }
        file.append(json)
        file.append(payload)
        do {
            try file.write(to: URL(fileURLWithPath: path))
        } catch {
            throw ModelError.invalidInput(name: path, reason: "cannot write: \(error.localizedDescription)")
        }
    }
}
