import StylizeCore

/// diffusers `Attention` as used by `BasicTransformerBlock`: to_q / to_k / to_v
/// projections (bias per config), scaled dot-product attention, to_out.0.
public struct Attention: Sendable {
    let toQ: Linear
    let toK: Linear
    let toV: Linear
    let toOut: Linear
    let heads: Int

    public init(_ w: Weights, queryDim: Int, crossAttentionDim: Int?, heads: Int, dimHead: Int,
                bias: Bool = false, outBias: Bool = true) throws {
        let inner = heads * dimHead
        let kvDim = crossAttentionDim ?? queryDim
        toQ = try Linear(w["to_q"], inFeatures: queryDim, outFeatures: inner, bias: bias)
        toK = try Linear(w["to_k"], inFeatures: kvDim, outFeatures: inner, bias: bias)
        toV = try Linear(w["to_v"], inFeatures: kvDim, outFeatures: inner, bias: bias)
        toOut = try Linear(w["to_out"]["0"], inFeatures: inner, outFeatures: queryDim, bias: outBias)
        self.heads = heads
    }

    /// - Parameters: x [B, T, queryDim]; context [B, S, kvDim] or nil for self-attention;
    ///   hooks: adapters' input hooks on the projections (ControlNet-LLLite).
    public func callAsFunction(_ x: Tensor, context: Tensor? = nil, hooks: LinearInputHooks? = nil) -> Tensor {
        let kv = context ?? x
        let o = MultiHeadAttention.callAsFunction(q: toQ(x, hooks: hooks), k: toK(kv, hooks: hooks),
                                                  v: toV(kv, hooks: hooks), heads: heads)
        return toOut(o)
    }
}

/// diffusers `FeedForward` with GEGLU: net.0.proj (dim → 2·inner), gate, net.2 (inner → dim).
public struct FeedForward: Sendable {
    let proj: Linear
    let out: Linear

    public init(_ w: Weights, dim: Int, mult: Int = 4, innerDim: Int? = nil) throws {
        let inner = innerDim ?? dim * mult
        proj = try Linear(w["net"]["0"]["proj"], inFeatures: dim, outFeatures: inner * 2)
        out = try Linear(w["net"]["2"], inFeatures: inner, outFeatures: dim)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { out(geglu(proj(x))) }
}

/// diffusers `BasicTransformerBlock` (norm_type "layer_norm"): pre-norm self-attention,
/// cross-attention and GEGLU feed-forward, each with a residual.
public struct BasicTransformerBlock: Sendable {
    let norm1: LayerNorm
    let attn1: Attention
    let norm2: LayerNorm
    let attn2: Attention
    let norm3: LayerNorm
    let ff: FeedForward
    let onlyCrossAttention: Bool

    public init(_ w: Weights, dim: Int, heads: Int, dimHead: Int, crossAttentionDim: Int,
                onlyCrossAttention: Bool = false) throws {
        norm1 = try LayerNorm(w["norm1"], dim: dim, eps: 1e-5)
        attn1 = try Attention(w["attn1"], queryDim: dim, crossAttentionDim: onlyCrossAttention ? crossAttentionDim : nil,
                              heads: heads, dimHead: dimHead)
        norm2 = try LayerNorm(w["norm2"], dim: dim, eps: 1e-5)
        attn2 = try Attention(w["attn2"], queryDim: dim, crossAttentionDim: crossAttentionDim,
                              heads: heads, dimHead: dimHead)
        norm3 = try LayerNorm(w["norm3"], dim: dim, eps: 1e-5)
        ff = try FeedForward(w["ff"], dim: dim)
        self.onlyCrossAttention = onlyCrossAttention
    }

    public func callAsFunction(_ x: Tensor, context: Tensor, hooks: LinearInputHooks? = nil) -> Tensor {
        var h = x
        addInPlace(&h, attn1(norm1(h), context: onlyCrossAttention ? context : nil, hooks: hooks))
        addInPlace(&h, attn2(norm2(h), context: context, hooks: hooks))
        addInPlace(&h, ff(norm3(h)))
        return h
    }
}

/// diffusers `Transformer2DModel` for continuous (latent image) input:
/// GroupNorm → proj_in (1×1 conv or linear) → transformer blocks → proj_out → + residual.
/// On NHWC a 1×1 conv and a linear over channels are the same GEMM; only the stored
/// weight shape differs ([out, in, 1, 1] vs [out, in]).
public struct Transformer2DModel: Sendable {
    let norm: GroupNorm
    let projIn: Linear
    let blocks: [BasicTransformerBlock]
    let projOut: Linear

    public init(_ w: Weights, heads: Int, dimHead: Int, inChannels: Int, numLayers: Int,
                crossAttentionDim: Int, groups: Int, useLinearProjection: Bool,
                onlyCrossAttention: Bool) throws {
        let inner = heads * dimHead
        norm = try GroupNorm(w["norm"], groups: groups, channels: inChannels, eps: 1e-6)
        projIn = try Self.projection(w["proj_in"], inFeatures: inChannels, outFeatures: inner, linear: useLinearProjection)
        blocks = try (0..<numLayers).map {
            try BasicTransformerBlock(w["transformer_blocks"]["\($0)"], dim: inner, heads: heads, dimHead: dimHead,
                                      crossAttentionDim: crossAttentionDim, onlyCrossAttention: onlyCrossAttention)
        }
        projOut = try Self.projection(w["proj_out"], inFeatures: inner, outFeatures: inChannels, linear: useLinearProjection)
    }

    private static func projection(_ w: Weights, inFeatures: Int, outFeatures: Int, linear: Bool) throws -> Linear {
        if linear { return try Linear(w, inFeatures: inFeatures, outFeatures: outFeatures) }
        let weight = try w.load("weight", shape: [outFeatures, inFeatures, 1, 1])
        let bias = try w.load("bias", shape: [outFeatures], role: .bias)
        return Linear(kernel: LinearKernel(weight: weight, bias: bias, inFeatures: inFeatures, outFeatures: outFeatures),
                      name: w.moduleName)
    }

    public func callAsFunction(_ x: Tensor, context: Tensor, hooks: LinearInputHooks? = nil) -> Tensor {
        let (b, hh, ww, c) = (x.n, x.h, x.w, x.c)
        var h = projIn(norm(x).reshaped([b, hh * ww, c]))
        for block in blocks { h = block(h, context: context, hooks: hooks) }
        var out = projOut(h).reshaped([b, hh, ww, c])
        addInPlace(&out, x)
        return out
    }
}

extension Array where Element == Transformer2DModel {
    /// The Linears whose input is the block's token grid (self-attention's q/k/v and
    /// cross-attention's q), the ones an input hook can condition per token.
    func hookableLinears(block: DenoiserBlock, latentDownscale: Int) -> [HookableLinear] {
        enumerated().flatMap { j, transformer in
            transformer.blocks.flatMap { b in
                // With only_cross_attention, attn1's k/v read the text context instead.
                (b.onlyCrossAttention ? [b.attn1.toQ, b.attn2.toQ] : [b.attn1.toQ, b.attn1.toK, b.attn1.toV, b.attn2.toQ]).map {
                    HookableLinear(name: $0.name, inFeatures: $0.kernel.inFeatures, block: block, attention: j,
                                   latentDownscale: latentDownscale)
                }
            }
        }
    }
}
