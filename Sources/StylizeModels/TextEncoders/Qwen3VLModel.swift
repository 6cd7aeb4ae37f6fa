import StylizeCore

/// transformers' `Qwen3VLConfig`: the language model's config in `text_config`, the
/// vision tower's in `vision_config`, and the ids of the image placeholder tokens.
public struct Qwen3VLConfig: Sendable {
    public var text: Qwen3TextConfig
    public var vision: Qwen3VLVisionConfig
    public var imageTokenId: Int
    public var videoTokenId: Int
    public var visionStartTokenId: Int
    public var visionEndTokenId: Int

    public init(file: String) throws { try self.init(ConfigReader(file: file)) }

    /// From a parsed config.json.
    public init(_ r: ConfigReader) throws {
        let file = r.file
        // Absent (or null) sub-configs are the sub-config classes' defaults, as in transformers.
        func sub(_ key: String) throws -> ConfigReader {
            switch r.raw(key) {
            case nil: return ConfigReader(object: [:], file: file + " (\(key), defaults)")
            case .object(let o)?: return ConfigReader(object: o, file: file + " (\(key))")
            case let other?: throw ModelError.invalidConfig(file: file, key: key, reason: "expected an object, found \(other)")
            }
        }
        self.text = try Qwen3TextConfig(sub("text_config"), family: .qwen3VLText)
        self.vision = try Qwen3VLVisionConfig(sub("vision_config"))
        imageTokenId = try r.int("image_token_id", 151655)
        videoTokenId = try r.int("video_token_id", 151656)
        visionStartTokenId = try r.int("vision_start_token_id", 151652)
        visionEndTokenId = try r.int("vision_end_token_id", 151653)
        guard self.vision.outHiddenSize == self.text.hiddenSize else {
            throw ModelError.invalidConfig(file: file, key: "vision_config.out_hidden_size",
                                           reason: "\(self.vision.outHiddenSize) does not match text hidden_size \(self.text.hiddenSize)")
        }
    }

    /// Whether a config.json describes a Qwen3-VL model.
    public static func matches(file: String) -> Bool {
        guard let r = try? ConfigReader(file: file) else { return false }
        return r.has("vision_config") && r.has("text_config") && ((try? r.optionalString("model_type")) ?? nil)?.hasPrefix("qwen3_vl") ?? true
    }
}

/// Images for one forward pass, as the Qwen2-VL / Qwen3-VL image processor makes them.
public struct VisionInput: Sendable {
    /// [Σ patches, C·Tp·P·P]
    public var pixelValues: Tensor
    public var grids: [GridTHW]
    public init(pixelValues: Tensor, grids: [GridTHW]) {
        self.pixelValues = pixelValues
        self.grids = grids
    }
}

/// transformers' `Qwen3VLModel` used as an encoder: image features replace the image
/// placeholder tokens, deepstack features are added to the visual positions after the
/// first layers, and positions follow the multimodal (interleaved T/H/W) RoPE.
public final class Qwen3VLModel: Sendable {
    public let config: Qwen3VLConfig
    public let languageModel: Qwen3TextModel
    public let visual: Qwen3VLVisionModel

    public init(config: Qwen3VLConfig, weights root: Weights) throws {
        self.config = config
        // Qwen3VLForConditionalGeneration (the Hub's files) nests under "model.".
        let w = root.contains("model.language_model.embed_tokens.weight") ? root["model"] : root
        languageModel = try Qwen3TextModel(config: config.text, weights: w["language_model"])
        visual = try Qwen3VLVisionModel(config: config.vision, weights: w["visual"])
    }

    public convenience init(directory: String) throws {
        let (config, source) = try openComponent(directory, Qwen3VLConfig.init(file:))
        try self.init(config: config, weights: Weights(source))
        try source.checkUsed(ignoring: ["lm_head.weight"])
    }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput? = nil) throws -> TextEncoderOutput {
        var embeddings = try languageModel.embed(tokens)
        let d = config.text.hiddenSize
        // Visual positions in row-major (batch, token) order, as the boolean mask selects them.
        var visualRows: [Int] = []
        for (b, row) in tokens.ids.enumerated() {
            for (t, id) in row.enumerated() where id == config.imageTokenId { visualRows.append(b * tokens.length + t) }
        }
        var deepstack: [Tensor] = []
        if let images {
            let vision = try visual(pixelValues: images.pixelValues, grids: images.grids)
            guard vision.imageEmbeds.shape[0] == visualRows.count else {
                throw ModelError.invalidInput(
                    name: "input_ids",
                    reason: "has \(visualRows.count) image tokens but the images give \(vision.imageEmbeds.shape[0]) features")
            }
            for (i, row) in visualRows.enumerated() {
                embeddings.data.replaceSubrange((row * d)..<((row + 1) * d), with: vision.imageEmbeds.data[(i * d)..<((i + 1) * d)])
            }
            deepstack = vision.deepstack
        } else if !visualRows.isEmpty {
            throw ModelError.invalidInput(name: "pixel_values", reason: "input_ids hold \(visualRows.count) image tokens but no image was given")
        }
        let rope = try multimodalRope(tokens, grids: images?.grids ?? [])
        return languageModel(embeddings: embeddings, rope: rope, attentionMask: tokens.attentionMask) { layer, h in
            guard layer < deepstack.count else { return nil }
            var out = h
            let features = deepstack[layer]
            for (i, row) in visualRows.enumerated() {
                for j in 0..<d { out.data[row * d + j] += features.data[i * d + j] }
            }
            return out
        }
    }

    /// transformers' `get_rope_index`: text runs advance all three axes together; an
    /// image contributes (t, h, w) grid positions offset by the running position, after
    /// which the position advances by max(h, w) merged cells. Padding keeps position 0.
    public func positionIds(_ tokens: TokenBatch, grids: [GridTHW]) throws -> [[[Int]]] {
        let m = config.vision.spatialMergeSize
        var positions = Array(repeating: Array(repeating: Array(repeating: 0, count: tokens.length), count: tokens.batch), count: 3)
        var gridIterator = grids.makeIterator()
        for (b, row) in tokens.ids.enumerated() {
            let kept = row.indices.filter { tokens.attentionMask?[b][$0] ?? 1 != 0 }
            var current = 0
            var k = 0
            while k < kept.count {
                let isImage = row[kept[k]] == config.imageTokenId
                var end = k
                while end < kept.count && (row[kept[end]] == config.imageTokenId) == isImage { end += 1 }
                if !isImage {
                    for (offset, idx) in kept[k..<end].enumerated() {
                        for axis in 0..<3 { positions[axis][b][idx] = current + offset }
                    }
                    current += end - k
                } else {
                    guard let g = gridIterator.next() else {
                        throw ModelError.invalidInput(name: "image_grid_thw", reason: "fewer grids than image token runs")
                    }
                    let (lt, lh, lw) = (g.t, g.h / m, g.w / m)
                    guard lt * lh * lw == end - k else {
                        throw ModelError.invalidInput(name: "input_ids",
                            reason: "an image run has \(end - k) tokens but its grid \([g.t, g.h, g.w]) needs \(lt * lh * lw)")
                    }
                    var i = k
                    for tt in 0..<lt { for hh in 0..<lh { for ww in 0..<lw {
                        positions[0][b][kept[i]] = current + tt
                        positions[1][b][kept[i]] = current + hh
                        positions[2][b][kept[i]] = current + ww
                        i += 1
                    } } }
                    current += max(g.h, g.w) / m
                }
                k = end
            }
        }
        return positions
    }

    private func multimodalRope(_ tokens: TokenBatch, grids: [GridTHW]) throws -> RotaryAngles {
        let c = config.text
        let positions = try positionIds(tokens, grids: grids)
        let inv = RotaryAngles.inverseFrequencies(headDim: c.headDim, base: c.ropeTheta)
        let section = c.mropeSection!
        // Interleaved layout: frequency i follows H if i % 3 == 1 and i < 3·section[1],
        // W if i % 3 == 2 and i < 3·section[2], else T.
        let axisOf: [Int] = inv.indices.map { i in
            if i % 3 == 1 && i < 3 * section[1] { return 1 }
            if i % 3 == 2 && i < 3 * section[2] { return 2 }
            return 0
        }
        let rows = tokens.batch * tokens.length
        var angles = [Float](repeating: 0, count: rows * inv.count)
        for b in 0..<tokens.batch {
            for t in 0..<tokens.length {
                let r = b * tokens.length + t
                for i in inv.indices { angles[r * inv.count + i] = Float(positions[axisOf[i]][b][t]) * inv[i] }
            }
        }
        return RotaryAngles(angles: angles, rows: rows, halfDim: inv.count)
    }
}
