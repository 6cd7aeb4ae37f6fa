import StylizeCore

/// What every loadable model component is: the registry (`ComponentRegistry`) builds one
/// from a folder's config.json and weights, by its class name.
public protocol ModelComponent: AnyObject, Sendable {
    /// The reference library's class this component reproduces (`_class_name` / the
    /// transformers class), for messages and `stylize-tool inspect`.
    var className: String { get }
}

/// Inputs of one denoiser call, NHWC inside. `linearHooks` carries adapter state
/// (ControlNet-LLLite's per-call conditioning), so one loaded denoiser serves streams
/// with and without adapters.
public struct DenoiserInputs: Sendable {
    /// Noisy latents, NHWC [B, H, W, in_channels].
    public var sample: Tensor
    /// One timestep per sample, or a single one for the whole batch.
    public var timesteps: [Float]
    /// [B, T, D]: D = the denoiser's `contextWidth`.
    public var encoderHiddenStates: Tensor
    /// LCM-style guidance embedding, [B, time_cond_proj_dim].
    public var timestepCond: Tensor?
    /// SDXL-style `text_time` conditioning: [B, E] and [B, k].
    public var textEmbeds: Tensor?
    public var timeIds: Tensor?
    /// Adapters attached for this call (ControlNet-LLLite's input hooks); nil: none.
    public var linearHooks: LinearInputHooks?

    public init(sample: Tensor, timesteps: [Float], encoderHiddenStates: Tensor,
                timestepCond: Tensor? = nil, textEmbeds: Tensor? = nil, timeIds: Tensor? = nil,
                linearHooks: LinearInputHooks? = nil) {
        self.sample = sample
        self.timesteps = timesteps
        self.encoderHiddenStates = encoderHiddenStates
        self.timestepCond = timestepCond
        self.textEmbeds = textEmbeds
        self.timeIds = timeIds
        self.linearHooks = linearHooks
    }
}

public typealias UNetInputs = DenoiserInputs

/// Where a hookable Linear sits in the denoiser, in the reference's block terms.
public enum DenoiserBlock: Hashable, Sendable, CustomStringConvertible {
    case down(Int), mid, up(Int)

    public var description: String {
        switch self {
        case .down(let i): return "down_blocks.\(i)"
        case .mid: return "mid_block"
        case .up(let i): return "up_blocks.\(i)"
        }
    }
}

/// A Linear an adapter may hook (`LinearInputHook`): its weight name, input width, the
/// block it belongs to and how far its token grid is downscaled from the latent.
public struct HookableLinear: Hashable, Sendable {
    public let name: String
    public let inFeatures: Int
    public let block: DenoiserBlock
    /// The block's attention index in its block (`attentions.<j>`).
    public let attention: Int
    /// Tokens are the latent downscaled by this (1, 2, 4, …).
    public let latentDownscale: Int
}

extension DenoiserInputs {
    /// The inputs of items `range` of this batch, for a call on those items alone:
    /// per-item tensors are sliced, shared ones (one timestep, one context) kept.
    public func slicingBatch(_ range: Range<Int>) -> DenoiserInputs {
        let batch = sample.n
        func items(_ t: Tensor?) -> Tensor? {
            guard let t, t.shape.first == batch, batch > 1 else { return t }
            return t.batchItems(range)
        }
        return DenoiserInputs(sample: sample.batchItems(range),
                              timesteps: timesteps.count == batch && batch > 1 ? Array(timesteps[range]) : timesteps,
                              encoderHiddenStates: items(encoderHiddenStates)!, timestepCond: items(timestepCond),
                              textEmbeds: items(textEmbeds), timeIds: items(timeIds),
                              linearHooks: linearHooks?.slicingBatch(range, of: batch))
    }
}

/// The model the denoise loop steps: noisy latent (+ context) in, prediction out.
public protocol Denoiser: ModelComponent {
    var inChannels: Int { get }
    var outChannels: Int { get }
    /// Width of the `encoder_hidden_states` it takes, and the config key that sets it.
    var contextWidth: Int { get }
    var contextWidthKey: String { get }
    /// Latent sizes must be a multiple of this.
    var downsamplingFactor: Int { get }
    /// `layers_per_block` of the reference layout (maps original-SD block numbers).
    var layersPerBlock: Int { get }
    /// Every Linear adapters may hook: the transformer blocks' attention projections.
    var hookableLinears: [HookableLinear] { get }
    func callAsFunction(_ inputs: DenoiserInputs) throws -> Tensor
}

/// Image ↔ latent (a VAE or a tiny autoencoder). Raw latents; the pipeline applies
/// `scalingFactor`.
public protocol LatentCodec: ModelComponent {
    var imageChannels: Int { get }
    /// Channels `decode` produces (3 for images; more for heads such as affine colour maps).
    var outputChannels: Int { get }
    var latentChannels: Int { get }
    /// Pixels per latent cell along each side.
    var downscale: Int { get }
    var scalingFactor: Float { get }
    /// NHWC image in [-1, 1] → NHWC latent.
    func encode(_ image: Tensor) throws -> Tensor
    /// NHWC latent → NHWC image in about [-1, 1].
    func decode(_ latent: Tensor) throws -> Tensor
}

/// How a vision-language encoder wants an image spliced into the token sequence.
public struct VisionTokenLayout: Sendable {
    public let visionStartTokenId: Int
    public let imageTokenId: Int
    public let visionEndTokenId: Int
    public let patchSize: Int
    public let temporalPatchSize: Int
    public let spatialMergeSize: Int
}

/// A text (or vision-language) encoder producing the denoiser's context.
public protocol TextEncoderModel: ModelComponent {
    var hiddenSize: Int { get }
    var vocabSize: Int { get }
    /// Non-nil when the encoder takes images (Qwen3-VL).
    var vision: VisionTokenLayout? { get }
    /// stylize.json's `text_encoder` defaults for this encoder family.
    static var conditioningDefaults: ConditioningSpec { get }
    /// What the encoder in a folder looks like, from its config.json alone (for a remote encoder).
    static func shape(configFile: String) throws -> TextEncoderShape
    func callAsFunction(_ tokens: TokenBatch, images: VisionInput?) throws -> TextEncoderOutput
}

extension TextEncoderModel {
    public var acceptsImages: Bool { vision != nil }
    public static var conditioningDefaults: ConditioningSpec { ConditioningSpec() }

    /// Text-only encoders refuse images with an error naming the class.
    func refuseImages(_ images: VisionInput?) throws {
        if images != nil { throw ModelError.invalidInput(name: "pixel_values", reason: "\(className) does not take images") }
    }
}
