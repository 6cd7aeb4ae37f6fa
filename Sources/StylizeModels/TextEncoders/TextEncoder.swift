import Foundation
import StylizeCore

/// Any supported conditioning encoder, picked from its folder's config.json.
public enum TextEncoder: Sendable {
    case clip(CLIPTextModel)
    case qwen3(Qwen3TextEncoder)
    case qwen3VL(Qwen3VLModel)

    public enum Kind: String, Sendable {
        case clip = "CLIPTextModel", qwen3 = "Qwen3Model", qwen3VL = "Qwen3VLModel"
    }

    /// From `model_type` (clip / clip_text_model, qwen3, qwen3_vl), else `architectures`.
    public static func detect(configFile: String) throws -> Kind {
        let r = try ConfigReader(file: configFile)
        let modelType = try r.optionalString("model_type") ?? ""
        let architectures = try r.strings("architectures", [])
        switch modelType {
        case "clip", "clip_text_model": return .clip
        case "qwen3": return .qwen3
        case "qwen3_vl": return .qwen3VL
        default: break
        }
        for a in architectures {
            if a.hasPrefix("CLIPText") { return .clip }
            if a.hasPrefix("Qwen3VL") { return .qwen3VL }
            if a.hasPrefix("Qwen3") { return .qwen3 }
        }
        throw ModelError.unsupported(file: configFile, key: "model_type",
                                     value: modelType.isEmpty ? "\(architectures)" : "\"\(modelType)\"")
    }

    public init(directory: String) throws {
        switch try Self.detect(configFile: directory + "/config.json") {
        case .clip: self = .clip(try CLIPTextModel(directory: directory))
        case .qwen3: self = .qwen3(try Qwen3TextEncoder(directory: directory))
        case .qwen3VL: self = .qwen3VL(try Qwen3VLModel(directory: directory))
        }
    }

    /// Builds the module tree over any weight source (used by init-random).
    public init(kind: Kind, configFile: String, weights: Weights) throws {
        switch kind {
        case .clip: self = .clip(try CLIPTextModel(config: CLIPTextConfig(file: configFile), weights: weights))
        case .qwen3: self = .qwen3(try Qwen3TextEncoder(config: Qwen3TextConfig(ConfigReader(file: configFile)), weights: weights))
        case .qwen3VL: self = .qwen3VL(try Qwen3VLModel(config: Qwen3VLConfig(file: configFile), weights: weights))
        }
    }

    /// The transformers class this encoder reproduces.
    public var kindName: String {
        switch self {
        case .clip: return Kind.clip.rawValue
        case .qwen3: return Kind.qwen3.rawValue
        case .qwen3VL: return Kind.qwen3VL.rawValue
        }
    }

    public var acceptsImages: Bool {
        if case .qwen3VL = self { return true }
        return false
    }

    /// Width of the hidden states it produces.
    public var hiddenSize: Int {
        switch self {
        case .clip(let m): return m.config.hiddenSize
        case .qwen3(let m): return m.model.config.hiddenSize
        case .qwen3VL(let m): return m.config.text.hiddenSize
        }
    }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput? = nil) throws -> TextEncoderOutput {
        switch self {
        case .clip(let m):
            if images != nil { throw ModelError.invalidInput(name: "pixel_values", reason: "CLIPTextModel does not take images") }
            return try m(tokens)
        case .qwen3(let m):
            if images != nil { throw ModelError.invalidInput(name: "pixel_values", reason: "a text-only Qwen3 model does not take images") }
            return try m(tokens)
        case .qwen3VL(let m):
            return try m(tokens, images: images)
        }
    }
}
