import Foundation

/// How a component class is recognised in a config.json and stored on disk.
public struct ComponentRegistration: Sendable {
    public enum Library: Sendable { case diffusers, transformers }
    /// diffusers `_class_name`, or the transformers class.
    public let className: String
    public let library: Library
    /// transformers `model_type` values of this class.
    public var modelTypes: [String] = []
    /// transformers `architectures` entries starting with one of these.
    public var architecturePrefixes: [String] = []
    /// For diffusers configs without `_class_name`: a key only this class has.
    public var distinctiveKey: String? = nil

    /// diffusers components store `diffusion_pytorch_model.safetensors`, transformers
    /// models `model.safetensors`.
    public var weightsFileName: String {
        library == .diffusers ? "diffusion_pytorch_model.safetensors" : "model.safetensors"
    }
}

/// A component class the registry can build: from a folder (checking every stored tensor
/// is used) or over any weight source (`init-random`).
public protocol RegisteredComponent: ModelComponent {
    static var registration: ComponentRegistration { get }
    init(directory: String) throws
    init(configFile: String, weights: Weights) throws
}

extension RegisteredComponent {
    public var className: String { Self.registration.className }
}

/// The one list of component classes. A new denoiser, codec or encoder is a new
/// conforming type added here; loading, validation and the CLI need no other change.
public enum ComponentRegistry {
    public static let classes: [any RegisteredComponent.Type] = [
        UNet2DConditionModel.self,
        AutoencoderTiny.self,
        CLIPTextModel.self,
        Qwen3VLModel.self,  // before Qwen3Model: its architectures also start with "Qwen3"
        Qwen3TextEncoder.self,
    ]

    /// The class a component folder's config.json describes: transformers configs by
    /// `model_type` (else `architectures`), diffusers configs by `_class_name` (else by
    /// a key only that class has).
    public static func detect(configFile: String) throws -> any RegisteredComponent.Type {
        let r = try ConfigReader(file: configFile)
        if r.has("model_type") || r.has("architectures") {
            let modelType = try r.optionalString("model_type") ?? ""
            if let c = classes.first(where: { $0.registration.modelTypes.contains(modelType) }) { return c }
            let architectures = try r.strings("architectures", [])
            for a in architectures {
                if let c = classes.first(where: { $0.registration.architecturePrefixes.contains { a.hasPrefix($0) } }) { return c }
            }
            throw ModelError.unsupported(file: configFile, key: "model_type",
                                         value: modelType.isEmpty ? "\(architectures)" : "\"\(modelType)\"")
        }
        if let name = try r.optionalString("_class_name") {
            guard let c = classes.first(where: { $0.registration.className == name }) else { throw r.unsupported("_class_name", name) }
            return c
        }
        if let c = classes.first(where: { $0.registration.distinctiveKey.map(r.has) ?? false }) { return c }
        throw ModelError.invalidConfig(file: configFile, key: "_class_name", reason: "missing, and the keys match no supported model")
    }

    /// Loads the component in `directory` as a `T` (a `Denoiser`, `LatentCodec` or
    /// `ConditioningBackend`); a folder holding another kind of model is an error naming
    /// what it holds and what was expected.
    public static func load<T>(directory: String, as: T.Type, role: String) throws -> T {
        let configFile = directory + "/config.json"
        let cls = try detect(configFile: configFile)
        guard let component = try cls.init(directory: directory) as? T else {
            throw ModelError.invalidConfig(file: configFile, key: "_class_name",
                                           reason: "is \(cls.registration.className), which is not a \(role)")
        }
        return component
    }
}

extension UNet2DConditionModel: RegisteredComponent {
    public static let registration = ComponentRegistration(className: "UNet2DConditionModel", library: .diffusers,
                                                           distinctiveKey: "down_block_types")
    public convenience init(configFile: String, weights: Weights) throws {
        try self.init(config: UNet2DConditionConfig(file: configFile), weights: weights)
    }
}

extension AutoencoderTiny: RegisteredComponent {
    public static let registration = ComponentRegistration(className: "AutoencoderTiny", library: .diffusers,
                                                           distinctiveKey: "encoder_block_out_channels")
    public convenience init(configFile: String, weights: Weights) throws {
        try self.init(config: AutoencoderTinyConfig(file: configFile), weights: weights)
    }
}

extension CLIPTextModel: RegisteredComponent {
    public static let registration = ComponentRegistration(className: "CLIPTextModel", library: .transformers,
                                                           modelTypes: ["clip", "clip_text_model"],
                                                           architecturePrefixes: ["CLIPText"])
    public convenience init(configFile: String, weights: Weights) throws {
        try self.init(config: CLIPTextConfig(file: configFile), weights: weights)
    }
}

extension Qwen3VLModel: RegisteredComponent {
    public static let registration = ComponentRegistration(className: "Qwen3VLModel", library: .transformers,
                                                           modelTypes: ["qwen3_vl"], architecturePrefixes: ["Qwen3VL"])
    public convenience init(configFile: String, weights: Weights) throws {
        try self.init(config: Qwen3VLConfig(file: configFile), weights: weights)
    }
}

extension Qwen3TextEncoder: RegisteredComponent {
    public static let registration = ComponentRegistration(className: "Qwen3Model", library: .transformers,
                                                           modelTypes: ["qwen3"], architecturePrefixes: ["Qwen3"])
    public convenience init(configFile: String, weights: Weights) throws {
        try self.init(config: Qwen3TextConfig(ConfigReader(file: configFile)), weights: weights)
    }
}
