import Foundation
import Synchronization
import StylizeModels

/// A loaded model folder (docs/ARCHITECTURE.md#model-folders): U-Net, tiny autoencoder,
/// encoder, tokenizer, scheduler and our stylize.json. Immutable once loaded, so every
/// stream in the process can share it (`ModelRegistry`).
public final class StylizeModel: Sendable {
    public let path: String
    public let unet: UNet2DConditionModel
    public let vae: AutoencoderTiny
    public let conditioning: ConditioningEncoder
    public let scheduler: any Scheduler
    public let config: StylizeConfig

    public init(path: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.fileNotFound(path: path, what: "model folder")
        }
        self.path = path
        func component(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        if fm.fileExists(atPath: component("model_index.json")) {
            let index = try ConfigReader(file: component("model_index.json"))
            if case .array(let vae)? = index.raw("vae"), vae.count == 2, case .string(let cls) = vae[1], cls != "AutoencoderTiny" {
                throw ModelError.unsupported(file: component("model_index.json"), key: "vae", value: "\(cls) (only AutoencoderTiny so far)")
            }
        }
        let encoderDir = component("text_encoder")
        let kind = try TextEncoder.detect(configFile: encoderDir + "/config.json")
        config = try StylizeConfig(file: component("stylize.json"), encoderKind: kind)
        unet = try UNet2DConditionModel(directory: component("unet"))
        vae = try AutoencoderTiny(directory: component("vae"))
        let encoder = try TextEncoder(directory: encoderDir)
        let tokenizer = try Tokenizer(directory: component("tokenizer"))
        var processor: Qwen2VLImageProcessor? = nil
        for candidate in [encoderDir + "/preprocessor_config.json", component("preprocessor_config.json")]
        where fm.fileExists(atPath: candidate) {
            processor = try Qwen2VLImageProcessor(file: candidate)
            break
        }
        conditioning = ConditioningEncoder(tokenizer: tokenizer, encoder: encoder, spec: config.textEncoder, imageProcessor: processor)
        scheduler = try SchedulerFactory.load(directory: component("scheduler"))
        try validate()
    }

    private func validate() throws {
        let c = unet.config
        let latent = vae.config.latentChannels
        let unetConfig = (path as NSString).appendingPathComponent("unet/config.json")
        let expectedIn = config.mode == .concatChannels ? 2 * latent : latent
        guard c.inChannels == expectedIn, c.outChannels == latent else {
            throw ModelError.invalidConfig(
                file: unetConfig, key: "in_channels",
                reason: "\(c.inChannels) in / \(c.outChannels) out, but conditioning_mode \(config.mode.rawValue) with \(latent) latent channels needs \(expectedIn) in / \(latent) out")
        }
        let width = conditioning.outputWidth
        let expectedWidth = c.encoderHidDim ?? c.crossAttentionDim[0]
        guard width == expectedWidth else {
            throw ModelError.invalidConfig(
                file: unetConfig, key: c.encoderHidDim != nil ? "encoder_hid_dim" : "cross_attention_dim",
                reason: "is \(expectedWidth) but the text encoder gives \(width) features per token")
        }
    }

    /// Images must be a multiple of this (autoencoder downscale × U-Net downsampling);
    /// the stylizer pads to it and crops back.
    public var sizeMultiple: Int { vae.config.downscale * (1 << (unet.config.blockOutChannels.count - 1)) }
}

/// One loaded model per folder in the process, shared by every stream that names it,
/// released when the last user lets go.
public enum ModelRegistry {
    private struct Loaded: Sendable {
        weak var model: StylizeModel?
    }
    private struct State {
        var models: [String: Loaded] = [:]
        var loads: [String: Int] = [:]
    }
    private static let state = Locked(State())
    /// Load count per path, for tests asserting that streams share.
    public static var loads: [String: Int] { state.withLock { $0.loads } }

    /// Loads under the registry's lock, so two streams naming one folder load it once.
    public static func model(at path: String) throws -> StylizeModel {
        let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        return try state.withLock { s throws -> StylizeModel in
            if let m = s.models[key]?.model { return m }
            let m = try StylizeModel(path: key)
            s.models[key] = Loaded(model: m)
            s.loads[key, default: 0] += 1
            return m
        }
    }
}
