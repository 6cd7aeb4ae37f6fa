import StylizeCore

/// Tokenizer + encoder + `ConditioningSpec`: prompts (and frames) in, the U-Net's
/// `encoder_hidden_states` out. Several prompts are encoded in one batched forward pass.
public final class ConditioningEncoder: Sendable {
    public let tokenizer: Tokenizer
    public let encoder: any TextEncoderModel
    public let spec: ConditioningSpec
    public let imageProcessor: Qwen2VLImageProcessor?

    public init(tokenizer: Tokenizer, encoder: any TextEncoderModel, spec: ConditioningSpec,
                imageProcessor: Qwen2VLImageProcessor? = nil) {
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.spec = spec
        self.imageProcessor = imageProcessor ?? encoder.vision.map(Qwen2VLImageProcessor.forQwen3VL)
    }

    /// Output width: the encoder's hidden size times the number of selected layers.
    public var outputWidth: Int { encoder.hiddenSize * spec.hiddenLayers.count }

    /// The token ids (and mask) the encoder sees for each prompt; `imageTokens[i]` is the
    /// number of merged patches of prompt i's frame (nil: no frame).
    public func tokens(prompts: [String], imageTokens: [Int?]) throws -> TokenBatch {
        precondition(prompts.count == imageTokens.count)
        var rows: [[Int]] = []
        for (prompt, count) in zip(prompts, imageTokens) {
            var ids: [Int] = []
            // Split around {image} so the vision block is inserted as ids, never re-tokenized.
            let pieces = spec.template.components(separatedBy: "{image}")
            for (i, piece) in pieces.enumerated() {
                if i > 0, let count, let v = encoder.vision {
                    ids += [v.visionStartTokenId] + Array(repeating: v.imageTokenId, count: count) + [v.visionEndTokenId]
                }
                let text = piece.replacingOccurrences(of: "{prompt}", with: prompt)
                if !text.isEmpty { ids += tokenizer.encode(text, addSpecialTokens: false) }
            }
            // Truncate the content, then add special tokens, so CLIP keeps its EOS at 77.
            let reserve = spec.addSpecialTokens ? tokenizer.addedSpecialTokenCount : 0
            if let maxLength = spec.maxLength, ids.count > maxLength - reserve {
                ids = Array(ids.prefix(max(0, maxLength - reserve)))
            }
            if spec.addSpecialTokens { ids = tokenizer.withSpecialTokens(ids) }
            rows.append(ids)
        }
        let length = spec.padTo ?? rows.map(\.count).max() ?? 0
        guard let padId = tokenizer.tokenToId(spec.padToken) else {
            throw ModelError.invalidConfig(file: "stylize.json", key: "text_encoder.pad_token",
                                           reason: "'\(spec.padToken)' is not in the tokenizer's vocabulary")
        }
        var mask: [[Int]] = []
        for i in rows.indices {
            if rows[i].count > length {
                throw ModelError.invalidInput(name: "prompt", reason: "\(rows[i].count) tokens exceed pad_to \(length); set max_length")
            }
            mask.append(Array(repeating: 1, count: rows[i].count) + Array(repeating: 0, count: length - rows[i].count))
            rows[i] += Array(repeating: padId, count: length - rows[i].count)
        }
        return TokenBatch(ids: rows, attentionMask: spec.attentionMask ? mask : nil)
    }

    /// Encodes prompts, each with an optional frame, in one forward pass:
    /// [B, T − drop_first, hidden · layers].
    public func encode(prompts: [String], frames: [RGBImage?]? = nil) throws -> Tensor {
        let (tokens, vision) = try prepare(prompts: prompts, frames: frames)
        return try encode(tokens, images: vision)
    }

    /// What the encoder's forward pass takes for these prompts and frames: the token ids
    /// and mask (with each frame's placeholder tokens) and the image processor's pixel
    /// values and grids. A remote encoder receives exactly these.
    public func prepare(prompts: [String], frames: [RGBImage?]? = nil) throws -> (tokens: TokenBatch, images: VisionInput?) {
        let frames = frames ?? Array(repeating: nil, count: prompts.count)
        var images: [RGBImage] = []
        var owners: [Int] = []
        for (i, f) in frames.enumerated() {
            guard let f, encoder.acceptsImages else { continue }
            var frame = f
            if let (h, w) = spec.imageSize, (frame.height, frame.width) != (h, w) {
                frame = RGBImage(width: w, height: h, pixels: resizeBicubicAntialiased(f, width: w, height: h))
            }
            images.append(frame)
            owners.append(i)
        }
        var vision: VisionInput? = nil
        var counts = [Int?](repeating: nil, count: prompts.count)
        if !images.isEmpty, let imageProcessor, let layout = encoder.vision {
            let v = try imageProcessor(images)
            let merge = layout.spatialMergeSize
            for (k, owner) in owners.enumerated() { counts[owner] = v.grids[k].patches / (merge * merge) }
            vision = v
        }
        return (try tokens(prompts: prompts, imageTokens: counts), vision)
    }

    /// Runs the encoder on prepared tokens and applies layer selection and dropping.
    public func encode(_ tokens: TokenBatch, images: VisionInput?) throws -> Tensor {
        let out = try encoder(tokens, images: images)
        let states = out.hiddenStates
        var selected: [Tensor] = []
        for index in spec.hiddenLayers {
            let i = index < 0 ? states.count + index : index
            guard i >= 0 && i < states.count else {
                throw ModelError.invalidConfig(file: "stylize.json", key: "text_encoder.hidden_layers",
                                               reason: "layer \(index) is outside the encoder's \(states.count) hidden states")
            }
            // −1 is the final output (after CLIP's final LayerNorm; Qwen's is already normed).
            selected.append(i == states.count - 1 ? out.lastHiddenState : states[i])
        }
        let (b, t, d) = (tokens.batch, tokens.length, encoder.hiddenSize)
        let kept = t - spec.dropFirst
        guard kept > 0 else {
            throw ModelError.invalidInput(name: "prompt", reason: "drop_first \(spec.dropFirst) removes all \(t) positions")
        }
        let width = d * selected.count
        var result = Tensor(uninitialized: [b, kept, width])
        for bi in 0..<b {
            for ti in 0..<kept {
                for (li, s) in selected.enumerated() {
                    let src = ((bi * t) + ti + spec.dropFirst) * d
                    let dst = (bi * kept + ti) * width + li * d
                    result.data.replaceSubrange(dst..<(dst + d), with: s.data[src..<(src + d)])
                }
            }
        }
        return result
    }
}

extension Qwen2VLImageProcessor {
    /// Qwen3-VL's shipped preprocessing (patch from the vision config, mean/std 0.5).
    static func forQwen3VL(_ layout: VisionTokenLayout) -> Qwen2VLImageProcessor {
        var p = Qwen2VLImageProcessor()
        p.patchSize = layout.patchSize
        p.temporalPatchSize = layout.temporalPatchSize
        p.mergeSize = layout.spatialMergeSize
        p.imageMean = [0.5, 0.5, 0.5]
        p.imageStd = [0.5, 0.5, 0.5]
        p.minPixels = 4 * 4 * p.patchSize * p.patchSize
        return p
    }
}
