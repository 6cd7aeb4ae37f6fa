import StylizeCore

/// What every U-Net block needs besides its input.
public struct UNetBlockContext: Sendable {
    /// act(temb), [B, time_embed_dim].
    public let tembActivated: Tensor
    /// Cross-attention context, [B, T, cross_attention_dim].
    public let encoderHiddenStates: Tensor
    /// Adapters' hooks on the transformers' Linears (nil: none).
    public let linearHooks: LinearInputHooks?
}

/// Shared settings that get_down_block / get_up_block pass to every block.
struct BlockSettings {
    let tembChannels: Int
    let groups: Int
    let eps: Float
    let act: Activation
    let resnetOutScale: Float
    let useLinearProjection: Bool
}

/// One transformer per resnet when the block has cross-attention.
struct CrossAttentionSpec {
    let heads: Int
    let layers: [Int]  // transformer depth per resnet
    let crossAttentionDim: Int
    let onlyCrossAttention: Bool

    /// `attentions.0 … attentions.{count-1}`: one Transformer2DModel per resnet.
    func transformers(_ w: Weights, channels: Int, count: Int, settings s: BlockSettings) throws -> [Transformer2DModel] {
        try (0..<count).map { i in
            try Transformer2DModel(w["attentions"]["\(i)"], heads: heads, dimHead: channels / heads,
                                   inChannels: channels, numLayers: layers[i],
                                   crossAttentionDim: crossAttentionDim, groups: s.groups,
                                   useLinearProjection: s.useLinearProjection,
                                   onlyCrossAttention: onlyCrossAttention)
        }
    }
}

/// diffusers `CrossAttnDownBlock2D` (with `attention`) and `DownBlock2D` (without):
/// resnets[i] (+ attentions[i]) then an optional stride-2 downsampler.
public struct DownBlock: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let downsampler: Downsample2D?

    init(_ w: Weights, numLayers: Int, inChannels: Int, outChannels: Int, settings s: BlockSettings,
         attention: CrossAttentionSpec?, addDownsample: Bool, downsamplePadding: Int) throws {
        resnets = try (0..<numLayers).map { i in
            try ResnetBlock2D(w["resnets"]["\(i)"], inChannels: i == 0 ? inChannels : outChannels,
                              outChannels: outChannels, tembChannels: s.tembChannels, groups: s.groups,
                              eps: s.eps, act: s.act, outputScaleFactor: s.resnetOutScale)
        }
        attentions = try attention.map { try $0.transformers(w, channels: outChannels, count: numLayers, settings: s) } ?? []
        downsampler = addDownsample
            ? try Downsample2D(w["downsamplers"]["0"], channels: outChannels, padding: downsamplePadding) : nil
    }

    /// Returns the block output and the skip states it contributes (one per resnet, plus
    /// the downsampled output).
    func callAsFunction(_ x: Tensor, _ ctx: UNetBlockContext) -> (Tensor, [Tensor]) {
        var h = x
        var states: [Tensor] = []
        for (i, resnet) in resnets.enumerated() {
            h = resnet(h, tembActivated: ctx.tembActivated)
            if !attentions.isEmpty { h = attentions[i](h, context: ctx.encoderHiddenStates, hooks: ctx.linearHooks) }
            states.append(h)
        }
        if let downsampler {
            h = downsampler(h)
            states.append(h)
        }
        return (h, states)
    }
}

/// diffusers `CrossAttnUpBlock2D` / `UpBlock2D`: each resnet consumes the hidden state
/// concatenated with one skip state (last in, first out), then an optional upsampler.
public struct UpBlock: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]
    let upsampler: Upsample2D?

    init(_ w: Weights, numLayers: Int, inChannels: Int, outChannels: Int, prevOutputChannels: Int,
         settings s: BlockSettings, attention: CrossAttentionSpec?, addUpsample: Bool) throws {
        resnets = try (0..<numLayers).map { i in
            let skip = i == numLayers - 1 ? inChannels : outChannels
            let resIn = i == 0 ? prevOutputChannels : outChannels
            return try ResnetBlock2D(w["resnets"]["\(i)"], inChannels: resIn + skip, outChannels: outChannels,
                                     tembChannels: s.tembChannels, groups: s.groups, eps: s.eps, act: s.act,
                                     outputScaleFactor: s.resnetOutScale)
        }
        attentions = try attention.map { try $0.transformers(w, channels: outChannels, count: numLayers, settings: s) } ?? []
        upsampler = addUpsample ? try Upsample2D(w["upsamplers"]["0"], channels: outChannels) : nil
    }

    var skipCount: Int { resnets.count }

    func callAsFunction(_ x: Tensor, skips: [Tensor], _ ctx: UNetBlockContext, upsampleSize: (Int, Int)?) -> Tensor {
        var h = x
        var skips = skips
        for (i, resnet) in resnets.enumerated() {
            h = resnet(Tensor.concatChannels(h, skips.removeLast()), tembActivated: ctx.tembActivated)
            if !attentions.isEmpty { h = attentions[i](h, context: ctx.encoderHiddenStates, hooks: ctx.linearHooks) }
        }
        if let upsampler { h = upsampler(h, size: upsampleSize) }
        return h
    }
}

/// diffusers `UNetMidBlock2DCrossAttn`: resnets[0], then (attentions[i], resnets[i+1]).
public struct UNetMidBlock2DCrossAttn: Sendable {
    let resnets: [ResnetBlock2D]
    let attentions: [Transformer2DModel]

    init(_ w: Weights, channels: Int, settings s: BlockSettings, attention a: CrossAttentionSpec,
         outputScaleFactor: Float, numLayers: Int = 1) throws {
        resnets = try (0...numLayers).map { i in
            try ResnetBlock2D(w["resnets"]["\(i)"], inChannels: channels, outChannels: channels,
                              tembChannels: s.tembChannels, groups: s.groups, eps: s.eps, act: s.act,
                              outputScaleFactor: outputScaleFactor)
        }
        let perLayer = CrossAttentionSpec(heads: a.heads, layers: Array(repeating: a.layers[0], count: numLayers),
                                          crossAttentionDim: a.crossAttentionDim, onlyCrossAttention: a.onlyCrossAttention)
        attentions = try perLayer.transformers(w, channels: channels, count: numLayers, settings: s)
    }

    func callAsFunction(_ x: Tensor, _ ctx: UNetBlockContext) -> Tensor {
        var h = resnets[0](x, tembActivated: ctx.tembActivated)
        for (i, attention) in attentions.enumerated() {
            h = attention(h, context: ctx.encoderHiddenStates, hooks: ctx.linearHooks)
            h = resnets[i + 1](h, tembActivated: ctx.tembActivated)
        }
        return h
    }
}
