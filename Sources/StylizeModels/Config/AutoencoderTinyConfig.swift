/// diffusers' `AutoencoderTiny` config (TAESD family), keys and defaults as in its
/// `__init__`.
public struct AutoencoderTinyConfig: Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var encoderBlockOutChannels: [Int]
    public var decoderBlockOutChannels: [Int]
    public var act: Activation
    public var latentChannels: Int
    public var upsamplingScalingFactor: Int
    public var numEncoderBlocks: [Int]
    public var numDecoderBlocks: [Int]
    public var latentMagnitude: Float
    public var latentShift: Float
    public var scalingFactor: Float
    public var shiftFactor: Float

    public init(file: String) throws { try self.init(ConfigReader(file: file)) }

    public init(_ r: ConfigReader) throws {
        inChannels = try r.int("in_channels", 3)
        outChannels = try r.int("out_channels", 3)
        encoderBlockOutChannels = try r.ints("encoder_block_out_channels", [64, 64, 64, 64])
        decoderBlockOutChannels = try r.ints("decoder_block_out_channels", [64, 64, 64, 64])
        let actName = try r.string("act_fn", "relu")
        guard let a = Activation(configName: actName) else { throw r.unsupported("act_fn", actName) }
        act = a
        let upsample = try r.string("upsample_fn", "nearest")
        if upsample != "nearest" { throw r.unsupported("upsample_fn", upsample) }
        latentChannels = try r.int("latent_channels", 4)
        upsamplingScalingFactor = try r.int("upsampling_scaling_factor", 2)
        numEncoderBlocks = try r.ints("num_encoder_blocks", [1, 3, 3, 3])
        numDecoderBlocks = try r.ints("num_decoder_blocks", [3, 3, 3, 1])
        latentMagnitude = try r.float("latent_magnitude", 3)
        latentShift = try r.float("latent_shift", 0.5)
        scalingFactor = try r.float("scaling_factor", 1)
        shiftFactor = try r.float("shift_factor", 0)
        guard !numEncoderBlocks.isEmpty, !numDecoderBlocks.isEmpty else {
            throw ModelError.invalidConfig(file: r.file, key: numEncoderBlocks.isEmpty ? "num_encoder_blocks" : "num_decoder_blocks",
                                           reason: "must list at least one block")
        }
        guard encoderBlockOutChannels.count == numEncoderBlocks.count else {
            throw ModelError.invalidConfig(file: r.file, key: "encoder_block_out_channels",
                                           reason: "should have the same length as num_encoder_blocks")
        }
        guard decoderBlockOutChannels.count == numDecoderBlocks.count else {
            throw ModelError.invalidConfig(file: r.file, key: "decoder_block_out_channels",
                                           reason: "should have the same length as num_decoder_blocks")
        }
    }

    /// Spatial downsampling of the encoder: one stride-2 conv per block after the first.
    public var downscale: Int { 1 << (numEncoderBlocks.count - 1) }
}
