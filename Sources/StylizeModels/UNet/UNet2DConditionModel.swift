import Foundation
import StylizeCore

/// diffusers `UNet2DConditionModel`, same module tree and weight names.
public final class UNet2DConditionModel: Denoiser {
    public let config: UNet2DConditionConfig
    let convIn: Conv2d
    let timeProj: Timesteps
    let timeEmbedding: TimestepEmbedding
    let encoderHidProj: Linear?
    let addTimeProj: Timesteps?
    let addEmbedding: TimestepEmbedding?
    let downBlocks: [DownBlock]
    let midBlock: UNetMidBlock2DCrossAttn?
    let upBlocks: [UpBlock]
    let convNormOut: GroupNorm
    let convOut: Conv2d
    public let hookableLinears: [HookableLinear]

    public init(config c: UNet2DConditionConfig, weights w: Weights) throws {
        config = c
        let blocks = c.blockOutChannels.count
        let timeEmbedDim = c.timeEmbedDim
        convIn = try Conv2d(w["conv_in"], inChannels: c.inChannels, outChannels: c.blockOutChannels[0],
                            kernelSize: c.convInKernel, padding: (c.convInKernel - 1) / 2)
        timeProj = Timesteps(numChannels: c.blockOutChannels[0], flipSinToCos: c.flipSinToCos,
                             downscaleFreqShift: c.freqShift)
        timeEmbedding = try TimestepEmbedding(w["time_embedding"], inChannels: c.blockOutChannels[0],
                                              timeEmbedDim: timeEmbedDim, act: c.actFn,
                                              postAct: c.timestepPostAct, condProjDim: c.timeCondProjDim)
        if let hid = c.encoderHidDim {
            guard Set(c.crossAttentionDim).count == 1 else {
                throw ModelError.invalidConfig(file: "unet/config.json", key: "cross_attention_dim",
                                               reason: "encoder_hid_dim needs a single cross_attention_dim")
            }
            encoderHidProj = try Linear(w["encoder_hid_proj"], inFeatures: hid, outFeatures: c.crossAttentionDim[0])
        } else {
            encoderHidProj = nil
        }
        if c.additionEmbedType == "text_time" {
            addTimeProj = Timesteps(numChannels: c.additionTimeEmbedDim!, flipSinToCos: c.flipSinToCos,
                                    downscaleFreqShift: c.freqShift)
            addEmbedding = try TimestepEmbedding(w["add_embedding"], inChannels: c.projectionClassEmbeddingsInputDim!,
                                                 timeEmbedDim: timeEmbedDim)
        } else {
            addTimeProj = nil
            addEmbedding = nil
        }

        let settings = BlockSettings(tembChannels: timeEmbedDim, groups: c.normNumGroups, eps: c.normEps,
                                     act: c.actFn, resnetOutScale: c.resnetOutScaleFactor,
                                     useLinearProjection: c.useLinearProjection)
        var down: [DownBlock] = []
        var output = c.blockOutChannels[0]
        for i in 0..<blocks {
            let input = output
            output = c.blockOutChannels[i]
            let attention = c.downBlockTypes[i] == "CrossAttnDownBlock2D"
                ? CrossAttentionSpec(heads: c.numAttentionHeads[i],
                                     layers: Array(repeating: c.transformerLayersPerBlock[i], count: c.layersPerBlock[i]),
                                     crossAttentionDim: c.crossAttentionDim[i],
                                     onlyCrossAttention: c.onlyCrossAttention[i])
                : nil
            try Self.checkHeads(output, attention, block: "down_blocks.\(i)")
            down.append(try DownBlock(w["down_blocks"]["\(i)"], numLayers: c.layersPerBlock[i], inChannels: input,
                                      outChannels: output, settings: settings, attention: attention,
                                      addDownsample: i < blocks - 1, downsamplePadding: c.downsamplePadding))
        }
        downBlocks = down

        if c.midBlockType != nil {
            let last = c.blockOutChannels[blocks - 1]
            let spec = CrossAttentionSpec(heads: c.numAttentionHeads[blocks - 1],
                                          layers: [c.transformerLayersPerBlock[blocks - 1]],
                                          crossAttentionDim: c.crossAttentionDim[blocks - 1],
                                          onlyCrossAttention: c.midBlockOnlyCrossAttention)
            try Self.checkHeads(last, spec, block: "mid_block")
            midBlock = try UNetMidBlock2DCrossAttn(w["mid_block"], channels: last, settings: settings,
                                                   attention: spec, outputScaleFactor: c.midBlockScaleFactor)
        } else {
            midBlock = nil
        }

        let reversedChannels = Array(c.blockOutChannels.reversed())
        let reversedHeads = Array(c.numAttentionHeads.reversed())
        let reversedLayers = Array(c.layersPerBlock.reversed())
        let reversedCross = Array(c.crossAttentionDim.reversed())
        let reversedOnlyCross = Array(c.onlyCrossAttention.reversed())
        var up: [UpBlock] = []
        output = reversedChannels[0]
        for i in 0..<blocks {
            let prev = output
            output = reversedChannels[i]
            let input = reversedChannels[min(i + 1, blocks - 1)]
            let numLayers = reversedLayers[i] + 1
            let depths: [Int]
            if let rev = c.reverseTransformerLayersPerBlock {
                depths = rev[i].count == 1 ? Array(repeating: rev[i][0], count: numLayers) : rev[i]
            } else {
                depths = Array(repeating: c.transformerLayersPerBlock[blocks - 1 - i], count: numLayers)
            }
            if c.upBlockTypes[i] == "CrossAttnUpBlock2D" && depths.count != numLayers {
                throw ModelError.invalidConfig(file: "unet/config.json", key: "reverse_transformer_layers_per_block",
                                               reason: "up block \(i) has \(numLayers) layers but \(depths.count) depths")
            }
            let attention = c.upBlockTypes[i] == "CrossAttnUpBlock2D"
                ? CrossAttentionSpec(heads: reversedHeads[i], layers: depths, crossAttentionDim: reversedCross[i],
                                     onlyCrossAttention: reversedOnlyCross[i])
                : nil
            try Self.checkHeads(output, attention, block: "up_blocks.\(i)")
            up.append(try UpBlock(w["up_blocks"]["\(i)"], numLayers: numLayers, inChannels: input, outChannels: output,
                                  prevOutputChannels: prev, settings: settings, attention: attention,
                                  addUpsample: i < blocks - 1))
        }
        upBlocks = up

        convNormOut = try GroupNorm(w["conv_norm_out"], groups: c.normNumGroups, channels: c.blockOutChannels[0],
                                    eps: c.normEps)
        convOut = try Conv2d(w["conv_out"], inChannels: c.blockOutChannels[0], outChannels: c.outChannels,
                             kernelSize: c.convOutKernel, padding: (c.convOutKernel - 1) / 2)
        var hookable: [HookableLinear] = []
        for (i, block) in downBlocks.enumerated() {
            hookable += block.attentions.hookableLinears(block: .down(i), latentDownscale: 1 << i)
        }
        hookable += (midBlock?.attentions ?? []).hookableLinears(block: .mid, latentDownscale: 1 << (blocks - 1))
        for (i, block) in upBlocks.enumerated() {
            hookable += block.attentions.hookableLinears(block: .up(i), latentDownscale: 1 << (blocks - 1 - i))
        }
        hookableLinears = hookable
    }

    private static func checkHeads(_ channels: Int, _ spec: CrossAttentionSpec?, block: String) throws {
        guard let spec else { return }
        guard spec.heads > 0, channels % spec.heads == 0 else {
            throw ModelError.invalidConfig(file: "unet/config.json", key: "attention_head_dim",
                                           reason: "\(block): \(channels) channels do not split into \(spec.heads) heads")
        }
    }

    /// Loads `config.json` and the weights from a diffusers `unet/` folder.
    public convenience init(directory: String) throws {
        let (config, source) = try openComponent(directory, UNet2DConditionConfig.init(file:))
        try self.init(config: config, weights: Weights(source))
        try source.checkAllUsed()
    }

    public var inChannels: Int { config.inChannels }
    public var outChannels: Int { config.outChannels }
    public var contextWidth: Int { config.encoderHidDim ?? config.crossAttentionDim[0] }
    public var contextWidthKey: String { config.encoderHidDim != nil ? "encoder_hid_dim" : "cross_attention_dim" }
    public var downsamplingFactor: Int { 1 << (config.blockOutChannels.count - 1) }
    public var layersPerBlock: Int { config.layersPerBlock[0] }

    /// The predicted noise / velocity / sample, NHWC [B, H, W, out_channels].
    public func callAsFunction(_ inputs: DenoiserInputs) throws -> Tensor {
        let c = config
        var sample = inputs.sample
        let batch = sample.n
        guard sample.rank == 4, sample.c == c.inChannels else {
            throw ModelError.invalidInput(name: "sample", reason: "has shape \(sample.shape) (NHWC), model expects \(c.inChannels) channels")
        }
        var timesteps = inputs.timesteps
        if timesteps.count == 1 && batch > 1 { timesteps = Array(repeating: timesteps[0], count: batch) }
        guard timesteps.count == batch else {
            throw ModelError.invalidInput(name: "timestep", reason: "has \(timesteps.count) values for batch \(batch)")
        }
        var context = inputs.encoderHiddenStates
        let expectedContext = c.encoderHidDim ?? c.crossAttentionDim[0]
        guard context.rank == 3, context.shape[0] == batch, context.shape[2] == expectedContext else {
            throw ModelError.invalidInput(name: "encoder_hidden_states",
                                          reason: "has shape \(context.shape), expected [\(batch), T, \(expectedContext)]")
        }
        if c.centerInputSample { affineInPlace(&sample, scale: 2, shift: -1) }

        var emb = timeEmbedding(timeProj(timesteps), condition: try timestepCond(inputs.timestepCond, batch: batch))
        if let addTimeProj, let addEmbedding {
            addInPlace(&emb, addEmbedding(try textTimeEmbeds(inputs, batch: batch, addTimeProj: addTimeProj)))
        }
        c.timeEmbeddingActFn?.apply(&emb)
        if let encoderHidProj { context = encoderHidProj(context) }
        var tembActivated = emb
        c.actFn.apply(&tembActivated)
        let ctx = UNetBlockContext(tembActivated: tembActivated, encoderHiddenStates: context,
                                   linearHooks: inputs.linearHooks)

        // diffusers forwards explicit upsample sizes when the input is not a multiple of
        // the overall upsampling factor.
        let upFactor = 1 << (upBlocks.count - 1)
        let forwardUpsampleSize = sample.h % upFactor != 0 || sample.w % upFactor != 0

        var h = convIn(sample)
        var skips: [Tensor] = [h]
        for block in downBlocks {
            let (out, states) = block(h, ctx)
            h = out
            skips.append(contentsOf: states)
        }
        if let midBlock { h = midBlock(h, ctx) }
        for (i, block) in upBlocks.enumerated() {
            let mine = Array(skips.suffix(block.skipCount))
            skips.removeLast(block.skipCount)
            let size: (Int, Int)? = (i < upBlocks.count - 1 && forwardUpsampleSize) ? (skips.last!.h, skips.last!.w) : nil
            h = block(h, skips: mine, ctx, upsampleSize: size)
        }
        return convOut(convNormOut(h, activation: c.actFn))
    }

    private func timestepCond(_ cond: Tensor?, batch: Int) throws -> Tensor? {
        guard let dim = config.timeCondProjDim else { return nil }
        guard let cond else { return nil }  // diffusers treats a missing timestep_cond as "no guidance embedding"
        guard cond.shape == [batch, dim] else {
            throw ModelError.invalidInput(name: "timestep_cond", reason: "has shape \(cond.shape), expected [\(batch), \(dim)]")
        }
        return cond
    }

    private func textTimeEmbeds(_ inputs: DenoiserInputs, batch: Int, addTimeProj: Timesteps) throws -> Tensor {
        guard let textEmbeds = inputs.textEmbeds else {
            throw ModelError.invalidInput(name: "text_embeds", reason: "required by addition_embed_type 'text_time'")
        }
        guard let timeIds = inputs.timeIds else {
            throw ModelError.invalidInput(name: "time_ids", reason: "required by addition_embed_type 'text_time'")
        }
        let timeFeatures = addTimeProj(timeIds.data.array)  // [B·k, dim]
        let perSample = timeFeatures.count / batch
        let textWidth = textEmbeds.count / batch
        guard textEmbeds.shape[0] == batch, textWidth + perSample == config.projectionClassEmbeddingsInputDim! else {
            throw ModelError.invalidInput(
                name: "text_embeds",
                reason: "text_embeds \(textEmbeds.shape) and time_ids \(timeIds.shape) give \(textWidth + perSample) features, model expects \(config.projectionClassEmbeddingsInputDim!)")
        }
        var joined = Tensor(uninitialized: [batch, textWidth + perSample])
        for b in 0..<batch {
            let o = b * (textWidth + perSample)
            for j in 0..<textWidth { joined.data[o + j] = textEmbeds.data[b * textWidth + j] }
            for j in 0..<perSample { joined.data[o + textWidth + j] = timeFeatures.data[b * perSample + j] }
        }
        return joined
    }
}
