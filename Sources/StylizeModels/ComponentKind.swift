import Foundation

/// Which model class a diffusers component folder holds, read from `_class_name` in its
/// config.json (falling back to the keys only that class has).
public enum ComponentKind: String, Sendable {
    case unet = "UNet2DConditionModel"
    case autoencoderTiny = "AutoencoderTiny"

    public static func detect(configFile: String) throws -> ComponentKind {
        let r = try ConfigReader(file: configFile)
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
        }
    }
}
