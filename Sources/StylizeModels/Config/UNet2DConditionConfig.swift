/// diffusers' `UNet2DConditionModel` config: key names and defaults as in
/// `UNet2DConditionModel.__init__`, with ints-or-lists expanded per block.
public struct UNet2DConditionConfig: Sendable {
    public var inChannels: Int
    public var outChannels: Int
    public var centerInputSample: Bool
    public var flipSinToCos: Bool
    public var freqShift: Float
    public var downBlockTypes: [String]
    public var midBlockType: String?
    public var upBlockTypes: [String]
    public var onlyCrossAttention: [Bool]
    public var midBlockOnlyCrossAttention: Bool
    public var blockOutChannels: [Int]
    public var layersPerBlock: [Int]
    public var downsamplePadding: Int
    public var midBlockScaleFactor: Float
    public var actFn: Activation
    public var normNumGroups: Int
    public var normEps: Float
    public var crossAttentionDim: [Int]
    public var transformerLayersPerBlock: [Int]
    public var reverseTransformerLayersPerBlock: [[Int]]?
    public var encoderHidDim: Int?
    /// Heads per block. diffusers' historical naming: `attention_head_dim` holds the head
    /// count when `num_attention_heads` is absent.
    public var numAttentionHeads: [Int]
    public var useLinearProjection: Bool
    public var additionEmbedType: String?
    public var additionTimeEmbedDim: Int?
    public var projectionClassEmbeddingsInputDim: Int?
    public var resnetOutScaleFactor: Float
    public var timeEmbeddingDim: Int?
    public var timeEmbeddingActFn: Activation?
    public var timestepPostAct: Activation?
    public var timeCondProjDim: Int?
    public var convInKernel: Int
    public var convOutKernel: Int

    public init(file: String) throws {
        try self.init(ConfigReader(file: file))
    }

    public init(_ r: ConfigReader) throws {
        inChannels = try r.int("in_channels", 4)
        outChannels = try r.int("out_channels", 4)
        centerInputSample = try r.bool("center_input_sample", false)
        flipSinToCos = try r.bool("flip_sin_to_cos", true)
        freqShift = try r.float("freq_shift", 0)
        downBlockTypes = try r.strings("down_block_types",
            ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"])
        midBlockType = r.has("mid_block_type") ? try r.optionalString("mid_block_type")
            : (r.object["mid_block_type"] == .null ? nil : "UNetMidBlock2DCrossAttn")
        upBlockTypes = try r.strings("up_block_types",
            ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"])
        let blocks = downBlockTypes.count
        blockOutChannels = try r.ints("block_out_channels", [320, 640, 1280, 1280])
        guard blockOutChannels.count == blocks else {
            throw ModelError.invalidConfig(file: r.file, key: "block_out_channels",
                reason: "has \(blockOutChannels.count) entries but down_block_types has \(blocks)")
        }
        guard blocks > 0 else {
            throw ModelError.invalidConfig(file: r.file, key: "down_block_types", reason: "must list at least one block")
        }
        // timeEmbedDim is 4 × the first; larger than that cannot be a channel count.
        for c in blockOutChannels where c < 1 || c > Int.max / 4 {
            throw ModelError.invalidConfig(file: r.file, key: "block_out_channels", reason: "\(c) is not a channel count")
        }
        guard upBlockTypes.count == blocks else {
            throw ModelError.invalidConfig(file: r.file, key: "up_block_types",
                reason: "has \(upBlockTypes.count) entries but down_block_types has \(blocks)")
        }
        let onlyCross = try r.boolPerBlock("only_cross_attention", false, blocks: blocks)
        onlyCrossAttention = onlyCross
        if r.has("mid_block_only_cross_attention") {
            midBlockOnlyCrossAttention = try r.bool("mid_block_only_cross_attention", false)
        } else if case .bool(let b)? = r.raw("only_cross_attention") {
            midBlockOnlyCrossAttention = b
        } else {
            midBlockOnlyCrossAttention = false
        }
        layersPerBlock = try r.intPerBlock("layers_per_block", 2, blocks: blocks)!
        downsamplePadding = try r.int("downsample_padding", 1)
        midBlockScaleFactor = try r.float("mid_block_scale_factor", 1)
        let act = try r.string("act_fn", "silu")
        guard let a = Activation(configName: act) else { throw r.unsupported("act_fn", act) }
        actFn = a
        guard let groups = try r.optionalInt("norm_num_groups") ?? (r.object["norm_num_groups"] == .null ? nil : 32) else {
            throw r.unsupported("norm_num_groups", "null")
        }
        normNumGroups = groups
        normEps = try r.float("norm_eps", 1e-5)
        crossAttentionDim = try r.intPerBlock("cross_attention_dim", 1280, blocks: blocks)!
        transformerLayersPerBlock = try r.intPerBlock("transformer_layers_per_block", 1, blocks: blocks)!
        reverseTransformerLayersPerBlock = try r.nestedInts("reverse_transformer_layers_per_block")
        encoderHidDim = try r.optionalInt("encoder_hid_dim")
        let headDim = try r.intPerBlock("attention_head_dim", 8, blocks: blocks)!
        numAttentionHeads = try r.intPerBlock("num_attention_heads", nil, blocks: blocks) ?? headDim
        useLinearProjection = try r.bool("use_linear_projection", false)
        additionEmbedType = try r.optionalString("addition_embed_type")
        additionTimeEmbedDim = try r.optionalInt("addition_time_embed_dim")
        projectionClassEmbeddingsInputDim = try r.optionalInt("projection_class_embeddings_input_dim")
        resnetOutScaleFactor = try r.float("resnet_out_scale_factor", 1)
        timeEmbeddingDim = try r.optionalInt("time_embedding_dim")
        timeEmbeddingActFn = try Self.activation(r, "time_embedding_act_fn")
        timestepPostAct = try Self.activation(r, "timestep_post_act")
        timeCondProjDim = try r.optionalInt("time_cond_proj_dim")
        convInKernel = try r.int("conv_in_kernel", 3)
        convOutKernel = try r.int("conv_out_kernel", 3)

        // Options this implementation does not cover are errors, never silently ignored.
        for t in downBlockTypes where !["CrossAttnDownBlock2D", "DownBlock2D"].contains(t) {
            throw r.unsupported("down_block_types", t)
        }
        for t in upBlockTypes where !["CrossAttnUpBlock2D", "UpBlock2D"].contains(t) {
            throw r.unsupported("up_block_types", t)
        }
        if let m = midBlockType, m != "UNetMidBlock2DCrossAttn" { throw r.unsupported("mid_block_type", m) }
        if try r.bool("dual_cross_attention", false) { throw r.unsupported("dual_cross_attention", true) }
        if let c = try r.optionalString("class_embed_type") { throw r.unsupported("class_embed_type", c) }
        if let n = try r.optionalInt("num_class_embeds") { throw r.unsupported("num_class_embeds", n) }
        if try r.bool("class_embeddings_concat", false) { throw r.unsupported("class_embeddings_concat", true) }
        let shift = try r.string("resnet_time_scale_shift", "default")
        if shift != "default" { throw r.unsupported("resnet_time_scale_shift", shift) }
        if try r.bool("resnet_skip_time_act", false) { throw r.unsupported("resnet_skip_time_act", true) }
        let tet = try r.string("time_embedding_type", "positional")
        if tet != "positional" { throw r.unsupported("time_embedding_type", tet) }
        let at = try r.string("attention_type", "default")
        if at != "default" { throw r.unsupported("attention_type", at) }
        if let n = try r.optionalString("cross_attention_norm") { throw r.unsupported("cross_attention_norm", n) }
        if let t = additionEmbedType, t != "text_time" { throw r.unsupported("addition_embed_type", t) }
        if additionEmbedType == "text_time" {
            guard additionTimeEmbedDim != nil, projectionClassEmbeddingsInputDim != nil else {
                throw ModelError.invalidConfig(file: r.file, key: "addition_embed_type",
                    reason: "'text_time' needs addition_time_embed_dim and projection_class_embeddings_input_dim")
            }
        }
        let hidType = try r.optionalString("encoder_hid_dim_type") ?? (encoderHidDim != nil ? "text_proj" : nil)
        if let t = hidType, t != "text_proj" { throw r.unsupported("encoder_hid_dim_type", t) }
        if hidType != nil && encoderHidDim == nil {
            throw ModelError.invalidConfig(file: r.file, key: "encoder_hid_dim", reason: "required by encoder_hid_dim_type")
        }
        if let rev = reverseTransformerLayersPerBlock, rev.count != blocks {
            throw ModelError.invalidConfig(file: r.file, key: "reverse_transformer_layers_per_block",
                                           reason: "has \(rev.count) entries for \(blocks) blocks")
        }
        for (key, v) in [("conv_in_kernel", convInKernel), ("conv_out_kernel", convOutKernel)] where v < 1 || v % 2 == 0 {
            throw ModelError.invalidConfig(file: r.file, key: key, reason: "must be a positive odd kernel size, is \(v)")
        }
    }

    private static func activation(_ r: ConfigReader, _ key: String) throws -> Activation? {
        guard let name = try r.optionalString(key) else { return nil }
        guard let a = Activation(configName: name) else { throw r.unsupported(key, name) }
        return a
    }

    public var timeEmbedDim: Int { timeEmbeddingDim ?? blockOutChannels[0] * 4 }
}
