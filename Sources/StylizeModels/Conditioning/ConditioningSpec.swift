/// How a model folder turns a prompt (and a frame) into the U-Net's conditioning: the
/// `text_encoder` section of our `stylize.json`. Nothing here is hard-coded per model, so
/// the paper's edit template, its 256-token padding and its dropped prefix are data.
///
/// ```json
/// "text_encoder": {
///   "template": "<|im_start|>user\n{image}{prompt}<|im_end|>\n",
///   "hidden_layers": [-1],
///   "max_length": 256, "pad_to": 256, "drop_first": 64,
///   "pad_token": "<|endoftext|>", "attention_mask": true,
///   "image_size": [256, 256]
/// }
/// ```
public struct ConditioningSpec: Sendable, Equatable {
    /// Text around the prompt: `{prompt}` is replaced by the prompt, `{image}` by the
    /// frame's vision tokens (vision_start, one image pad per merged patch, vision_end) when
    /// the encoder sees images, and by nothing otherwise.
    public var template = "{prompt}"
    /// Indices into hidden_states (embeddings = 0; negative counts from the end, −1 = the
    /// final output). Several are concatenated along features.
    public var hiddenLayers = [-1]
    /// Tokens kept before padding (truncation keeps the last special token when the
    /// tokenizer adds one, as CLIP's 77-token truncation does).
    public var maxLength: Int?
    /// Pad every prompt to this many tokens (else to the longest prompt in the batch).
    public var padTo: Int?
    /// Drop this many leading positions from the encoder output (the template's prefix).
    public var dropFirst = 0
    public var padToken = "<|endoftext|>"
    /// Whether padding is masked out of attention (transformers style) or attended to
    /// (Stable Diffusion feeds CLIP no mask).
    public var attentionMask = true
    public var addSpecialTokens = true
    /// The frame is resized to this (height, width) before the image processor.
    public var imageSize: (Int, Int)? = (256, 256)

    public init() {}

    public static func == (a: ConditioningSpec, b: ConditioningSpec) -> Bool {
        a.template == b.template && a.hiddenLayers == b.hiddenLayers && a.maxLength == b.maxLength && a.padTo == b.padTo
            && a.dropFirst == b.dropFirst && a.padToken == b.padToken && a.attentionMask == b.attentionMask
            && a.addSpecialTokens == b.addSpecialTokens && a.imageSize?.0 == b.imageSize?.0 && a.imageSize?.1 == b.imageSize?.1
    }

    /// Stable Diffusion's CLIP conditioning: 77 tokens padded with EOS, no mask, last layer.
    public static var stableDiffusionCLIP: ConditioningSpec {
        var s = ConditioningSpec()
        s.maxLength = 77
        s.padTo = 77
        s.attentionMask = false
        s.imageSize = nil
        return s
    }

    /// Reads the `text_encoder` object of a stylize.json; absent keys keep `defaults`.
    public init(_ r: ConfigReader, defaults: ConditioningSpec = ConditioningSpec()) throws {
        self = defaults
        template = try r.string("template", template)
        hiddenLayers = r.has("hidden_layers") ? try r.ints("hidden_layers", hiddenLayers) : hiddenLayers
        maxLength = try r.optionalInt("max_length") ?? maxLength
        padTo = try r.optionalInt("pad_to") ?? padTo
        dropFirst = try r.int("drop_first", dropFirst)
        padToken = try r.string("pad_token", padToken)
        attentionMask = try r.bool("attention_mask", attentionMask)
        addSpecialTokens = try r.bool("add_special_tokens", addSpecialTokens)
        if r.has("image_size") {
            let size = try r.ints("image_size", [])
            guard size.count == 2, size.allSatisfy({ $0 > 0 }) else {
                throw ModelError.invalidConfig(file: r.file, key: "image_size", reason: "expected [height, width]")
            }
            imageSize = (size[0], size[1])
        }
        guard !hiddenLayers.isEmpty else {
            throw ModelError.invalidConfig(file: r.file, key: "hidden_layers", reason: "must name at least one layer")
        }
        guard dropFirst >= 0, (maxLength ?? 1) > 0, (padTo ?? 1) > 0 else {
            throw ModelError.invalidConfig(file: r.file, key: "drop_first", reason: "lengths must be positive")
        }
        if let padTo, dropFirst >= padTo {
            throw ModelError.invalidConfig(file: r.file, key: "drop_first", reason: "drops all \(padTo) padded positions")
        }
        guard template.contains("{prompt}") else {
            throw ModelError.invalidConfig(file: r.file, key: "template", reason: "must contain {prompt}")
        }
    }
}
