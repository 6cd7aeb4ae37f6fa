import Foundation
import StylizeCore

/// What a parameter is, so a random source can initialise it sensibly.
public enum ParameterRole: Sendable {
    case weight, bias, normWeight, normBias
}

/// Where model parameters come from: a checkpoint on disk, or a random generator that
/// records what the model asked for (init-random). Models request every parameter by
/// its full reference name and expected shape, so loading, validation and random
/// initialisation share one code path.
public protocol WeightSource: AnyObject {
    func load(_ name: String, shape: [Int], role: ParameterRole) throws -> [Float]
    func contains(_ name: String) -> Bool
}

/// A prefix-scoped view of a weight source ("down_blocks.0.resnets.1." …).
public struct Weights {
    public let source: WeightSource
    public let prefix: String

    public init(_ source: WeightSource, prefix: String = "") {
        self.source = source
        self.prefix = prefix
    }

    public func scoped(_ name: String) -> Weights {
        Weights(source, prefix: prefix + name + ".")
    }

    public subscript(_ name: String) -> Weights { scoped(name) }

    public func load(_ name: String, shape: [Int], role: ParameterRole = .weight) throws -> [Float] {
        try source.load(prefix + name, shape: shape, role: role)
    }

    public func contains(_ name: String) -> Bool { source.contains(prefix + name) }

    /// The module's own name: the prefix without its trailing dot ("down_blocks.0.resnets.1").
    public var moduleName: String { prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix }
}

/// Parameters from one safetensors file, several, or a sharded index; half types are
/// converted to Float32 once here. Tracks which tensors were used so a checkpoint that
/// does not match its config is reported by name instead of silently half-loaded.
public final class SafeTensorsWeightSource: WeightSource {
    public let files: [SafeTensorsFile]
    /// How errors name this source (the file, or the index file of a sharded model).
    public let displayPath: String
    private var fileForTensor: [String: SafeTensorsFile] = [:]
    private var used = Set<String>()

    public init(files: [SafeTensorsFile], displayPath: String) throws {
        self.files = files
        self.displayPath = displayPath
        for f in files {
            for name in f.entries.keys {
                if let other = fileForTensor[name] {
                    throw ModelError.invalidSafeTensors(
                        file: f.path, reason: "tensor '\(name)' also appears in \(other.path)")
                }
                fileForTensor[name] = f
            }
        }
    }

    public convenience init(file: String) throws {
        try self.init(files: [SafeTensorsFile(path: file)], displayPath: file)
    }

    /// Opens the weights of a diffusers / transformers component folder.
    public convenience init(directory: String) throws {
        let fm = FileManager.default
        let dir = URL(fileURLWithPath: directory)
        let singles = ["diffusion_pytorch_model.safetensors", "model.safetensors",
                       "diffusion_pytorch_model.fp16.safetensors", "model.fp16.safetensors"]
        for name in singles where fm.fileExists(atPath: dir.appendingPathComponent(name).path) {
            try self.init(file: dir.appendingPathComponent(name).path)
            return
        }
        let indexes = ["diffusion_pytorch_model.safetensors.index.json", "model.safetensors.index.json",
                       "diffusion_pytorch_model.safetensors.index.fp16.json", "model.safetensors.index.fp16.json"]
        for name in indexes where fm.fileExists(atPath: dir.appendingPathComponent(name).path) {
            try self.init(index: dir.appendingPathComponent(name).path)
            return
        }
        let others = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
        if others.count == 1 {
            try self.init(file: dir.appendingPathComponent(others[0]).path)
            return
        }
        throw ModelError.fileNotFound(
            path: directory,
            what: others.isEmpty ? "model weights (*.safetensors)"
                : "an unambiguous weights file (found \(others.joined(separator: ", ")); add an index.json")
    }

    /// Opens a sharded checkpoint from its `*.safetensors.index.json`.
    public convenience init(index path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.fileNotFound(path: path, what: "shard index")
        }
        let map = try Self.parseShardIndex(data, file: path)
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        var shards: [String: SafeTensorsFile] = [:]
        for shard in Set(map.values).sorted() {
            shards[shard] = try SafeTensorsFile(path: dir.appendingPathComponent(shard).path)
        }
        for (tensor, shard) in map where shards[shard]?.entries[tensor] == nil {
            throw ModelError.missingTensor(file: dir.appendingPathComponent(shard).path, tensor: tensor)
        }
        try self.init(files: shards.keys.sorted().map { shards[$0]! }, displayPath: path)
    }

    /// The `weight_map` (tensor name → shard file name) of a `*.safetensors.index.json`,
    /// every shard a plain file name in the index's folder; `file` names it in errors.
    public static func parseShardIndex(_ data: Data, file path: String) throws -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let map = object["weight_map"] as? [String: String] else {
            throw ModelError.invalidConfig(file: path, key: "weight_map", reason: "missing or not an object of strings")
        }
        for shard in Set(map.values).sorted() {
            guard !shard.isEmpty, !shard.contains("/") && !shard.contains("..") else {
                throw ModelError.invalidConfig(file: path, key: "weight_map", reason: "shard name '\(shard)' is not a plain file name")
            }
        }
        return map
    }

    public var names: [String] { fileForTensor.keys.sorted() }

    public func contains(_ name: String) -> Bool { fileForTensor[name] != nil }

    public func shape(of name: String) -> [Int]? { fileForTensor[name]?.entries[name]?.shape }

    public func load(_ name: String, shape: [Int], role: ParameterRole) throws -> [Float] {
        guard let file = fileForTensor[name], let entry = file.entries[name] else {
            throw ModelError.missingTensor(file: displayPath, tensor: name)
        }
        // PyTorch stores some 1×1 convs as [out, in] and linears as [out, in, 1, 1];
        // accept shapes that differ only by trailing 1s.
        guard entry.shape == shape || Self.squeezed(entry.shape) == Self.squeezed(shape) else {
            throw ModelError.shapeMismatch(file: file.path, tensor: name, expected: shape, found: entry.shape)
        }
        used.insert(name)
        return try file.floats(name)
    }

    /// Tensors present in the checkpoint that no module asked for.
    public var unusedTensors: [String] { fileForTensor.keys.filter { !used.contains($0) }.sorted() }

    public func checkAllUsed() throws { try checkUsed(ignoring: []) }

    /// Like `checkAllUsed`, tolerating tensors that checkpoints carry but models
    /// recompute (e.g. CLIP's `position_ids` buffer).
    public func checkUsed(ignoring: Set<String>) throws {
        let unused = unusedTensors.filter { !ignoring.contains($0) }
        if !unused.isEmpty { throw ModelError.unexpectedTensors(file: displayPath, tensors: unused) }
    }

    private static func squeezed(_ s: [Int]) -> [Int] {
        var s = s
        while s.count > 1 && s.last == 1 { s.removeLast() }
        return s
    }
}

/// Generates parameters on request (PyTorch-like scales) and remembers them in request
/// order, so `init-random` can write a model folder for any config.
public final class RandomWeightSource: WeightSource {
    public private(set) var recorded: [(name: String, shape: [Int], values: [Float])] = []
    private var rng: SplitMix64

    public init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    public func contains(_ name: String) -> Bool { false }

    public func load(_ name: String, shape: [Int], role: ParameterRole) throws -> [Float] {
        let count = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: count)
        switch role {
        case .weight:
            // Kaiming-uniform bound PyTorch uses for Linear / Conv: 1/sqrt(fan_in).
            let fanIn = max(1, shape.dropFirst().reduce(1, *))
            let bound = 1 / Float(fanIn).squareRoot()
            for i in 0..<count { values[i] = rng.uniform(-bound, bound) }
        case .bias:
            for i in 0..<count { values[i] = rng.uniform(-0.02, 0.02) }
        case .normWeight:
            for i in 0..<count { values[i] = 1 + rng.uniform(-0.05, 0.05) }
        case .normBias:
            for i in 0..<count { values[i] = rng.uniform(-0.02, 0.02) }
        }
        recorded.append((name, shape, values))
        return values
    }

    public func write(to path: String, half: Bool) throws {
        var writer = SafeTensorsWriter()
        for r in recorded {
            writer.items.append(.init(name: r.name, shape: r.shape, values: half ? .f16(r.values) : .f32(r.values)))
        }
        try writer.write(to: path)
    }
}

/// Small, fast, reproducible PRNG (Steele et al.); explicit so runs repeat across platforms.
public struct SplitMix64: Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    public mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Float {
        let u1 = max(Double(next() >> 11) / Double(1 << 53), 1e-300)
        let u2 = Double(next() >> 11) / Double(1 << 53)
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }
}

/// Opens a component folder: its config.json and its weights. Callers build the model
/// and then call `checkAllUsed()` so a checkpoint that does not match its config fails.
func openComponent<Config>(_ directory: String, _ parse: (String) throws -> Config) throws
    -> (Config, SafeTensorsWeightSource)
{
    (try parse(directory + "/config.json"), try SafeTensorsWeightSource(directory: directory))
}
