/// transformers' `Qwen3Config` / `Qwen3VLTextConfig` (the language model half). Absent
/// keys take that class's defaults (configuration_qwen3.py, configuration_qwen3_vl.py),
/// which differ between the two in the RoPE base and the multimodal RoPE split.
public struct Qwen3TextConfig: Sendable {
    /// Which transformers class the keys belong to.
    public enum Family: Sendable {
        case qwen3
        case qwen3VLText

        /// `default_theta`: the RoPE base when neither rope_parameters nor rope_theta say.
        var defaultRopeTheta: Float { self == .qwen3 ? 10000 : 500_000 }
        /// Qwen3VLTextRotaryEmbedding's `rope_parameters.get("mrope_section", [24, 20, 20])`.
        var defaultMropeSection: [Int]? { self == .qwen3 ? nil : [24, 20, 20] }
    }

    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var hiddenAct: Activation
    public var rmsNormEps: Float
    public var ropeTheta: Float
    public var attentionBias: Bool
    /// Qwen3-VL's multimodal RoPE: how many of the head_dim/2 frequencies follow the
    /// temporal, height and width positions (interleaved T,H,W,T,H,W,…).
    public var mropeSection: [Int]?

    /// Whether the non-negative `parts` add up to `total` (without trapping on overflow).
    static func sums(_ parts: [Int], to total: Int) -> Bool {
        var sum = 0
        for p in parts {
            guard p >= 0 else { return false }
            let (next, overflow) = sum.addingReportingOverflow(p)
            guard !overflow else { return false }
            sum = next
        }
        return sum == total
    }

    public init(_ r: ConfigReader, family: Family = .qwen3) throws {
        vocabSize = try r.int("vocab_size", 151936)
        hiddenSize = try r.positiveInt("hidden_size", 4096)
        intermediateSize = try r.int("intermediate_size", 22016)
        numHiddenLayers = try r.int("num_hidden_layers", 32)
        numAttentionHeads = try r.positiveInt("num_attention_heads", 32)
        // Both classes: absent means 32, an explicit null means one group per head.
        numKeyValueHeads = try r.positiveInt("num_key_value_heads", r.object["num_key_value_heads"] == .null ? numAttentionHeads : 32)
        // Absent means 128; null leaves the modeling code's hidden_size / heads.
        headDim = try r.positiveInt("head_dim", r.object["head_dim"] == .null ? hiddenSize / numAttentionHeads : 128)
        let act = try r.string("hidden_act", "silu")
        guard let a = Activation(configName: act) else { throw r.unsupported("hidden_act", act) }
        hiddenAct = a
        rmsNormEps = try r.float("rms_norm_eps", 1e-6)
        attentionBias = try r.bool("attention_bias", false)
        // transformers ≥ 5 writes rope_parameters; older configs rope_theta + rope_scaling.
        var theta = try r.float("rope_theta", family.defaultRopeTheta)
        var section = family.defaultMropeSection
        for key in ["rope_parameters", "rope_scaling"] {
            guard case .object(let o)? = r.raw(key) else { continue }
            let sub = ConfigReader(object: o, file: r.file + " (\(key))")
            theta = try sub.float("rope_theta", theta)
            let type = try sub.optionalString("rope_type") ?? sub.optionalString("type") ?? "default"
            guard ["default", "mrope"].contains(type) else { throw sub.unsupported("rope_type", type) }
            if sub.has("mrope_section") { section = try sub.ints("mrope_section", []) }
            if sub.has("mrope_interleaved"), try !sub.bool("mrope_interleaved", true) {
                throw sub.unsupported("mrope_interleaved", false)
            }
        }
        ropeTheta = theta
        mropeSection = section
        if try r.optionalInt("sliding_window") != nil, try r.bool("use_sliding_window", false) {
            throw r.unsupported("use_sliding_window", true)
        }
        guard numAttentionHeads % numKeyValueHeads == 0 else {
            throw ModelError.invalidConfig(file: r.file, key: "num_key_value_heads",
                                           reason: "\(numAttentionHeads) heads do not split into \(numKeyValueHeads) groups")
        }
        if let s = mropeSection, !Self.sums(s, to: headDim / 2) {
            throw ModelError.invalidConfig(file: r.file, key: "mrope_section",
                                           reason: "\(s) must sum to head_dim / 2 = \(headDim / 2)")
        }
    }
}
