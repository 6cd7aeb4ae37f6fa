import Foundation
import Synchronization
import StylizeModels

/// A loaded model folder (docs/ARCHITECTURE.md#model-folders): U-Net, tiny autoencoder,
/// encoder, tokenizer, scheduler and our stylize.json. Immutable once loaded, so every
/// stream in the process can share it (`ModelRegistry`).
public final class StylizeModel: Sendable {
    public let path: String
    public let denoiser: any Denoiser
    public let codec: any LatentCodec
    public let conditioning: ConditioningEncoder
    public let scheduler: any Scheduler
    public let config: StylizeConfig

    /// - Parameter encoderWeights: false for an engine whose prompts are encoded on a
    ///   conditioning server: the text encoder is read from its config.json only
    ///   (`TextEncoderShape`); its weights, possibly the largest file, stay on disk.
    public init(path: String, encoderWeights: Bool = true) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw ModelError.fileNotFound(path: path, what: "model folder")
        }
        self.path = path
        func component(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
        let encoderDir = component("text_encoder")
        let encoderClass = try ComponentRegistry.detect(configFile: encoderDir + "/config.json")
        guard let backendClass = encoderClass as? (any TextEncoderModel.Type) else {
            throw ModelError.invalidConfig(file: encoderDir + "/config.json", key: "model_type",
                                           reason: "is \(encoderClass.registration.className), which is not a text encoder")
        }
        config = try StylizeConfig(file: component("stylize.json"), textEncoderDefaults: backendClass.conditioningDefaults)
        denoiser = try ComponentRegistry.load(directory: component("unet"), as: (any Denoiser).self, role: "denoiser")
        codec = try ComponentRegistry.load(directory: component("vae"), as: (any LatentCodec).self, role: "latent codec")
        let encoder: any TextEncoderModel = encoderWeights
            ? try TextEncoder.load(directory: encoderDir) : try TextEncoder.shape(directory: encoderDir)
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
        let latent = codec.latentChannels
        let unetConfig = (path as NSString).appendingPathComponent("unet/config.json")
        let expectedIn = config.mode.strategy.denoiserInputChannels(latentChannels: latent)
        guard denoiser.inChannels == expectedIn, denoiser.outChannels == latent else {
            throw ModelError.invalidConfig(
                file: unetConfig, key: "in_channels",
                reason: "\(denoiser.inChannels) in / \(denoiser.outChannels) out, but conditioning_mode \(config.mode.rawValue) with \(latent) latent channels needs \(expectedIn) in / \(latent) out")
        }
        let head = config.outputHead
        guard codec.outputChannels == head.decoderChannels else {
            throw ModelError.invalidConfig(
                file: (path as NSString).appendingPathComponent("vae/config.json"), key: "out_channels",
                reason: "is \(codec.outputChannels), but output_head \(head.rawValue) needs \(head.decoderChannels)")
        }
        let width = conditioning.outputWidth
        guard width == denoiser.contextWidth else {
            throw ModelError.invalidConfig(
                file: unetConfig, key: denoiser.contextWidthKey,
                reason: "is \(denoiser.contextWidth) but the text encoder gives \(width) features per token")
        }
    }

    /// Images must be a multiple of this (autoencoder downscale × U-Net downsampling);
    /// the stylizer pads to it and crops back.
    public var sizeMultiple: Int { codec.downscale * denoiser.downsamplingFactor }
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
    /// Load count per path (with " (no encoder weights)" for remote-encoder loads), for
    /// tests asserting that streams share.
    public static var loads: [String: Int] { state.withLock { $0.loads } }

    /// Loads under the registry's lock, so two streams naming one folder load it once
    /// (once with the encoder's weights, once without, when both kinds of stream exist).
    public static func model(at path: String, encoderWeights: Bool = true) throws -> StylizeModel {
        let folder = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
        let key = encoderWeights ? folder : folder + " (no encoder weights)"
        return try state.withLock { s throws -> StylizeModel in
            if let m = s.models[key]?.model { return m }
            let m = try StylizeModel(path: folder, encoderWeights: encoderWeights)
            s.models[key] = Loaded(model: m)
            s.loads[key, default: 0] += 1
            return m
        }
    }
}
