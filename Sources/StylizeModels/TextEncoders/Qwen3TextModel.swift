import StylizeCore

/// transformers' `Qwen3Attention`: GQA with per-head RMSNorm on q and k before RoPE.
struct Qwen3Attention {
    let qProj, kProj, vProj, oProj: Linear
    let qNorm, kNorm: RMSNormKernel
    let heads, kvHeads, headDim: Int

    init(_ w: Weights, config c: Qwen3TextConfig) throws {
        let (h, kv, d) = (c.numAttentionHeads, c.numKeyValueHeads, c.headDim)
        qProj = try Linear(w["q_proj"], inFeatures: c.hiddenSize, outFeatures: h * d, bias: c.attentionBias)
        kProj = try Linear(w["k_proj"], inFeatures: c.hiddenSize, outFeatures: kv * d, bias: c.attentionBias)
        vProj = try Linear(w["v_proj"], inFeatures: c.hiddenSize, outFeatures: kv * d, bias: c.attentionBias)
        oProj = try Linear(w["o_proj"], inFeatures: h * d, outFeatures: c.hiddenSize, bias: c.attentionBias)
        qNorm = RMSNormKernel(dim: d, eps: c.rmsNormEps, weight: try w["q_norm"].load("weight", shape: [d], role: .normWeight))
        kNorm = RMSNormKernel(dim: d, eps: c.rmsNormEps, weight: try w["k_norm"].load("weight", shape: [d], role: .normWeight))
        (heads, kvHeads, headDim) = (h, kv, d)
    }

    func callAsFunction(_ x: Tensor, rope: RotaryAngles, keyBias: Tensor?) -> Tensor {
        var q = qNorm(qProj(x))
        var k = kNorm(kProj(x))
        rope.apply(&q, heads: heads)
        rope.apply(&k, heads: kvHeads)
        return oProj(MultiHeadAttention.callAsFunction(q: q, k: k, v: vProj(x), heads: heads, kvHeads: kvHeads,
                                                       keyBias: keyBias, causal: true))
    }
}

/// transformers' `Qwen3MLP`: down(act(gate(x)) · up(x)).
struct Qwen3MLP {
    let gateUp: LinearKernel  // gate_proj and up_proj fused into one GEMM
    let downProj: Linear
    let act: Activation

    init(_ w: Weights, config c: Qwen3TextConfig) throws {
        let gate = try w["gate_proj"].load("weight", shape: [c.intermediateSize, c.hiddenSize])
        let up = try w["up_proj"].load("weight", shape: [c.intermediateSize, c.hiddenSize])
        gateUp = LinearKernel(weight: gate + up, bias: nil, inFeatures: c.hiddenSize, outFeatures: 2 * c.intermediateSize)
        downProj = try Linear(w["down_proj"], inFeatures: c.intermediateSize, outFeatures: c.hiddenSize, bias: false)
        act = c.hiddenAct
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        downProj(gatedProduct(gateUp(x), activate: act, activatedHalf: .first))
    }
}

/// transformers' `Qwen3DecoderLayer` (also Qwen3-VL's text decoder layer).
struct Qwen3DecoderLayer {
    let inputLayernorm: RMSNormKernel
    let selfAttn: Qwen3Attention
    let postAttentionLayernorm: RMSNormKernel
    let mlp: Qwen3MLP

    init(_ w: Weights, config c: Qwen3TextConfig) throws {
        inputLayernorm = RMSNormKernel(dim: c.hiddenSize, eps: c.rmsNormEps,
                                       weight: try w["input_layernorm"].load("weight", shape: [c.hiddenSize], role: .normWeight))
        selfAttn = try Qwen3Attention(w["self_attn"], config: c)
        postAttentionLayernorm = RMSNormKernel(
            dim: c.hiddenSize, eps: c.rmsNormEps,
            weight: try w["post_attention_layernorm"].load("weight", shape: [c.hiddenSize], role: .normWeight))
        mlp = try Qwen3MLP(w["mlp"], config: c)
    }

    func callAsFunction(_ x: Tensor, rope: RotaryAngles, keyBias: Tensor?) -> Tensor {
        var h = x
        addInPlace(&h, selfAttn(inputLayernorm(h), rope: rope, keyBias: keyBias))
        addInPlace(&h, mlp(postAttentionLayernorm(h)))
        return h
    }
}

/// The Qwen3 decoder stack (`Qwen3Model`, or `Qwen3VLTextModel` inside Qwen3-VL):
/// embeddings, layers, final RMSNorm. Position handling is the caller's: 1-D RoPE for
/// text-only models, multimodal RoPE for Qwen3-VL.
public final class Qwen3TextModel: Sendable {
    public let config: Qwen3TextConfig
    let embedTokens: [Float]
    let layers: [Qwen3DecoderLayer]
    let norm: RMSNormKernel

    public init(config c: Qwen3TextConfig, weights w: Weights) throws {
        config = c
        embedTokens = try w["embed_tokens"].load("weight", shape: [c.vocabSize, c.hiddenSize])
        layers = try (0..<c.numHiddenLayers).map { try Qwen3DecoderLayer(w["layers"]["\($0)"], config: c) }
        norm = RMSNormKernel(dim: c.hiddenSize, eps: c.rmsNormEps,
                             weight: try w["norm"].load("weight", shape: [c.hiddenSize], role: .normWeight))
    }

    public func embed(_ tokens: TokenBatch) throws -> Tensor {
        try embeddingLookup(embedTokens, dim: config.hiddenSize, ids: tokens.ids, name: "embed_tokens")
    }

    /// Plain RoPE angles for positions 0..<T in every batch row (what transformers uses
    /// when no position_ids are given, padding or not).
    public func sequentialRope(batch: Int, length: Int) -> RotaryAngles {
        let positions = (0..<(batch * length)).map { Float($0 % length) }
        return RotaryAngles(positions: positions,
                            inverseFrequencies: RotaryAngles.inverseFrequencies(headDim: config.headDim, base: config.ropeTheta))
    }

    /// - Parameters:
    ///   - afterLayer: called with (layer index, layer output); may return a replacement
    ///     for the next layer's input (Qwen3-VL's deepstack injection). The recorded
    ///     hidden state is the layer output before that replacement, as in transformers.
    public func callAsFunction(embeddings: Tensor, rope: RotaryAngles, attentionMask: [[Int]]?,
                               afterLayer: ((Int, Tensor) -> Tensor?)? = nil) -> TextEncoderOutput {
        let batch = embeddings.shape[0], length = embeddings.shape[1]
        let bias = TokenBatch(ids: Array(repeating: Array(repeating: 0, count: length), count: batch),
                              attentionMask: attentionMask).keyBias()
        var h = embeddings
        var states = [h]
        for (i, layer) in layers.enumerated() {
            h = layer(h, rope: rope, keyBias: bias)
            states.append(h)
            if let replacement = afterLayer?(i, h) { h = replacement }
        }
        let last = norm(h)
        states[states.count - 1] = last  // transformers ties hidden_states[-1] to the normed output
        return TextEncoderOutput(lastHiddenState: last, hiddenStates: states, pooled: nil)
    }
}

/// A text-only Qwen3 checkpoint (`Qwen3Model`, or `Qwen3ForCausalLM` with `model.` and
/// `lm_head`), used as a text encoder.
public final class Qwen3TextEncoder: Sendable {
    public let model: Qwen3TextModel

    public init(config: Qwen3TextConfig, weights root: Weights) throws {
        let w = root.contains("model.embed_tokens.weight") ? root["model"] : root
        model = try Qwen3TextModel(config: config, weights: w)
    }

    public convenience init(directory: String) throws {
        let (config, source) = try openComponent(directory) { try Qwen3TextConfig(ConfigReader(file: $0)) }
        try self.init(config: config, weights: Weights(source))
        try source.checkUsed(ignoring: ["lm_head.weight"])
    }

    public func callAsFunction(_ tokens: TokenBatch) throws -> TextEncoderOutput {
        let embeddings = try model.embed(tokens)
        return model(embeddings: embeddings, rope: model.sequentialRope(batch: tokens.batch, length: tokens.length),
                     attentionMask: tokens.attentionMask)
    }
}
