import StylizeCore

/// transformers' `CLIPTextConfig` (accepting a full `CLIPConfig` with `text_config`).
public struct CLIPTextConfig: Sendable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var maxPositionEmbeddings: Int
    public var hiddenAct: Activation
    public var layerNormEps: Float
    public var eosTokenId: Int

    public init(file: String) throws { try self.init(ConfigReader(file: file)) }

    /// From a parsed config.json (a CLIPTextConfig, or a CLIPConfig with `text_config`).
    public init(_ reader: ConfigReader) throws {
        var r = reader
        let file = reader.file
        if case .object(let text)? = r.raw("text_config") { r = ConfigReader(object: text, file: file + " (text_config)") }
        vocabSize = try r.int("vocab_size", 49408)
        hiddenSize = try r.positiveInt("hidden_size", 512)
        intermediateSize = try r.int("intermediate_size", 2048)
        numHiddenLayers = try r.int("num_hidden_layers", 12)
        numAttentionHeads = try r.positiveInt("num_attention_heads", 8)
        maxPositionEmbeddings = try r.int("max_position_embeddings", 77)
        let act = try r.string("hidden_act", "quick_gelu")
        guard let a = Activation(configName: act) else { throw r.unsupported("hidden_act", act) }
        hiddenAct = a
        layerNormEps = try r.float("layer_norm_eps", 1e-5)
        eosTokenId = try r.int("eos_token_id", 49407)
        guard hiddenSize % numAttentionHeads == 0 else {
            throw ModelError.invalidConfig(file: file, key: "num_attention_heads",
                                           reason: "hidden_size \(hiddenSize) is not divisible by \(numAttentionHeads) heads")
        }
    }
}

/// transformers' `CLIPAttention`: q/k/v/out projections with bias.
struct CLIPAttention {
    let qProj, kProj, vProj, outProj: Linear
    let heads: Int

    init(_ w: Weights, dim: Int, heads: Int) throws {
        qProj = try Linear(w["q_proj"], inFeatures: dim, outFeatures: dim)
        kProj = try Linear(w["k_proj"], inFeatures: dim, outFeatures: dim)
        vProj = try Linear(w["v_proj"], inFeatures: dim, outFeatures: dim)
        outProj = try Linear(w["out_proj"], inFeatures: dim, outFeatures: dim)
        self.heads = heads
    }

    func callAsFunction(_ x: Tensor, keyBias: Tensor?) -> Tensor {
        outProj(MultiHeadAttention.callAsFunction(q: qProj(x), k: kProj(x), v: vProj(x), heads: heads,
                                                  keyBias: keyBias, causal: true))
    }
}

/// transformers' `CLIPEncoderLayer`: pre-LayerNorm attention and MLP blocks.
struct CLIPEncoderLayer {
    let layerNorm1: LayerNorm
    let selfAttn: CLIPAttention
    let layerNorm2: LayerNorm
    let fc1: Linear
    let fc2: Linear
    let act: Activation

    init(_ w: Weights, config c: CLIPTextConfig) throws {
        layerNorm1 = try LayerNorm(w["layer_norm1"], dim: c.hiddenSize, eps: c.layerNormEps)
        selfAttn = try CLIPAttention(w["self_attn"], dim: c.hiddenSize, heads: c.numAttentionHeads)
        layerNorm2 = try LayerNorm(w["layer_norm2"], dim: c.hiddenSize, eps: c.layerNormEps)
        fc1 = try Linear(w["mlp"]["fc1"], inFeatures: c.hiddenSize, outFeatures: c.intermediateSize)
        fc2 = try Linear(w["mlp"]["fc2"], inFeatures: c.intermediateSize, outFeatures: c.hiddenSize)
        act = c.hiddenAct
    }

    func callAsFunction(_ x: Tensor, keyBias: Tensor?) -> Tensor {
        var h = x
        addInPlace(&h, selfAttn(layerNorm1(h), keyBias: keyBias))
        var m = fc1(layerNorm2(h))
        act.apply(&m)
        addInPlace(&h, fc2(m))
        return h
    }
}

/// transformers' `CLIPTextModel` (the text tower of CLIP, as SD pipelines use it).
public final class CLIPTextModel: Sendable {
    public let config: CLIPTextConfig
    let tokenEmbedding: [Float]
    let positionEmbedding: [Float]
    let layers: [CLIPEncoderLayer]
    let finalLayerNorm: LayerNorm

    public init(config c: CLIPTextConfig, weights root: Weights) throws {
        config = c
        // Stable Diffusion checkpoints (transformers 4.x) carry "text_model."; transformers 5
        // saves CLIPTextModel without it.
        let w = root.contains("text_model.embeddings.token_embedding.weight") ? root["text_model"] : root
        tokenEmbedding = try w["embeddings"]["token_embedding"].load("weight", shape: [c.vocabSize, c.hiddenSize])
        positionEmbedding = try w["embeddings"]["position_embedding"].load("weight", shape: [c.maxPositionEmbeddings, c.hiddenSize])
        layers = try (0..<c.numHiddenLayers).map { try CLIPEncoderLayer(w["encoder"]["layers"]["\($0)"], config: c) }
        finalLayerNorm = try LayerNorm(w["final_layer_norm"], dim: c.hiddenSize, eps: c.layerNormEps)
    }

    public convenience init(directory: String) throws {
        let (config, source) = try openComponent(directory, CLIPTextConfig.init(file:))
        try self.init(config: config, weights: Weights(source))
        try source.checkUsed(ignoring: ["text_model.embeddings.position_ids", "embeddings.position_ids"])
    }

    public func callAsFunction(_ tokens: TokenBatch) throws -> TextEncoderOutput {
        let c = config
        let t = tokens.length
        guard t <= c.maxPositionEmbeddings else {
            throw ModelError.invalidInput(name: "input_ids", reason: "\(t) tokens exceed max_position_embeddings \(c.maxPositionEmbeddings)")
        }
        var h = try embeddingLookup(tokenEmbedding, dim: c.hiddenSize, ids: tokens.ids, name: "token_embedding")
        h.data.withUnsafeMutableBufferPointer { hb in
            for row in 0..<(tokens.batch * t) {
                let pos = row % t
                for j in 0..<c.hiddenSize { hb[row * c.hiddenSize + j] += positionEmbedding[pos * c.hiddenSize + j] }
            }
        }
        let bias = tokens.keyBias()
        var states = [h]
        for layer in layers {
            h = layer(h, keyBias: bias)
            states.append(h)
        }
        let last = finalLayerNorm(h)
        // Pooled = the EOS position: argmax of ids for legacy configs (eos_token_id 2), else the first EOS.
        var pooled = Tensor(uninitialized: [tokens.batch, c.hiddenSize])
        for (b, row) in tokens.ids.enumerated() {
            let pos = c.eosTokenId == 2
                ? row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0
                : row.firstIndex(of: c.eosTokenId) ?? 0
            for j in 0..<c.hiddenSize { pooled.data[b * c.hiddenSize + j] = last.data[(b * t + pos) * c.hiddenSize + j] }
        }
        return TextEncoderOutput(lastHiddenState: last, hiddenStates: states, pooled: pooled)
    }
}
