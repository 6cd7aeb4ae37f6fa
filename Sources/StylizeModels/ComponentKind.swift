import Foundation

/// Which model class a diffusers component folder holds, read from `_class_name` in its
/// config.json (falling back to the keys only that class has).
public enum ComponentKind: String, Sendable {
    case unet = "UNet2DConditionModel"
    case autoencoderTiny = "AutoencoderTiny"
    case clipText = "CLIPTextModel"
    case qwen3 = "Qwen3Model"
    case qwen3VL = "Qwen3VLModel"

    public static func detect(configFile: String) throws -> ComponentKind {
        let r = try ConfigReader(file: configFile)
        if r.has("model_type") || r.has("architectures") {
            switch try TextEncoder.detect(configFile: configFile) {
            case .clip: return .clipText
            case .qwen3: return .qwen3
            case .qwen3VL: return .qwen3VL
            }
        }
        if let name = try r.optionalString("_class_name") {
            guard let kind = ComponentKind(rawValue: name) else { throw r.unsupported("_class_name", name) }
            return kind
        }
        if r.has("encoder_block_out_channels") { return .autoencoderTiny }
        if r.has("down_block_types") { return .unet }
        throw ModelError.invalidConfig(file: configFile, key: "_class_name", reason: "missing, and the keys match no supported model")
    }

    /// Builds the component's module tree over `weights`.
    public func instantiate(configFile: String, weights: Weights) throws -> AnyObject {
        switch self {
        case .unet: return try UNet2DConditionModel(config: UNet2DConditionConfig(file: configFile), weights: weights)
        case .autoencoderTiny: return try AutoencoderTiny(config: AutoencoderTinyConfig(file: configFile), weights: weights)
        case .clipText: return try TextEncoder(kind: .clip, configFile: configFile, weights: weights) as AnyObject
        case .qwen3: return try TextEncoder(kind: .qwen3, configFile: configFile, weights: weights) as AnyObject
        case .qwen3VL: return try TextEncoder(kind: .qwen3VL, configFile: configFile, weights: weights) as AnyObject
        }
    }

    /// diffusers components store `diffusion_pytorch_model.safetensors`, transformers
    /// models `model.safetensors`.
    public var weightsFileName: String {
        switch self {
        case .unet, .autoencoderTiny: return "diffusion_pytorch_model.safetensors"
        case .clipText, .qwen3, .qwen3VL: return "model.safetensors"
        }
    }
}
