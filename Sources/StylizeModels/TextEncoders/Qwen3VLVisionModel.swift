import Foundation
import StylizeCore

/// transformers' `Qwen3VLVisionConfig`.
public struct Qwen3VLVisionConfig: Sendable {
    public var depth: Int
    public var hiddenSize: Int
    public var hiddenAct: Activation
    public var intermediateSize: Int
    public var numHeads: Int
    public var inChannels: Int
    public var patchSize: Int
    public var spatialMergeSize: Int
    public var temporalPatchSize: Int
    public var outHiddenSize: Int
    public var numPositionEmbeddings: Int
    public var deepstackVisualIndexes: [Int]
    public var ropeTheta: Float

    public init(_ r: ConfigReader) throws {
        depth = try r.int("depth", 27)
        hiddenSize = try r.positiveInt("hidden_size", 1152)
        let act = try r.string("hidden_act", "gelu_pytorch_tanh")
        guard let a = Activation(configName: act) else { throw r.unsupported("hidden_act", act) }
        hiddenAct = a
        intermediateSize = try r.int("intermediate_size", 4304)
        numHeads = try r.positiveInt("num_heads", 16)
        inChannels = try r.int("in_channels", 3)
        patchSize = try r.int("patch_size", 16)
        spatialMergeSize = try r.int("spatial_merge_size", 2)
        temporalPatchSize = try r.int("temporal_patch_size", 2)
        outHiddenSize = try r.int("out_hidden_size", 3584)
        numPositionEmbeddings = try r.positiveInt("num_position_embeddings", 2304)
        deepstackVisualIndexes = try r.ints("deepstack_visual_indexes", [8, 16, 24])
        var theta: Float = 10000
        if case .object(let o)? = r.raw("rope_parameters") {
            let sub = ConfigReader(object: o, file: r.file + " (vision rope_parameters)")
            theta = try sub.float("rope_theta", theta)
            let type = try sub.string("rope_type", "axial")
            if type != "axial" { throw sub.unsupported("rope_type", type) }
        }
        ropeTheta = theta
        guard hiddenSize % numHeads == 0, (hiddenSize / numHeads) % 4 == 0 else {
            throw ModelError.invalidConfig(file: r.file, key: "num_heads",
                                           reason: "head size \(hiddenSize)/\(numHeads) must be a multiple of 4 for 2-D RoPE")
        }
        let side = Int(Double(numPositionEmbeddings).squareRoot())
        guard side * side == numPositionEmbeddings else {
            throw ModelError.invalidConfig(file: r.file, key: "num_position_embeddings", reason: "must be a square number")
        }
    }

    public var patchDim: Int { inChannels * temporalPatchSize * patchSize * patchSize }
    public var headDim: Int { hiddenSize / numHeads }
}

/// One image's patch grid in units of patches (T, H, W), as `image_grid_thw` gives it.
public struct GridTHW: Equatable, Sendable {
    public var t: Int, h: Int, w: Int
    public init(t: Int, h: Int, w: Int) { (self.t, self.h, self.w) = (t, h, w) }
    public var patches: Int { t * h * w }
}

/// transformers' `Qwen3VLVisionPatchMerger`: LayerNorm (before or after gathering the
/// spatial_merge² neighbours into one row), fc1, GELU, fc2.
struct Qwen3VLVisionPatchMerger {
    let norm: LayerNorm
    let fc1: Linear
    let fc2: Linear
    let merged: Int
    let postShuffleNorm: Bool

    init(_ w: Weights, config c: Qwen3VLVisionConfig, postShuffleNorm: Bool) throws {
        merged = c.hiddenSize * c.spatialMergeSize * c.spatialMergeSize
        norm = try LayerNorm(w["norm"], dim: postShuffleNorm ? merged : c.hiddenSize, eps: 1e-6)
        fc1 = try Linear(w["linear_fc1"], inFeatures: merged, outFeatures: merged)
        fc2 = try Linear(w["linear_fc2"], inFeatures: merged, outFeatures: c.outHiddenSize)
        self.postShuffleNorm = postShuffleNorm
    }

    /// x: [N, hidden] in merge-block order → [N / merge², out_hidden].
    func callAsFunction(_ x: Tensor) -> Tensor {
        let rows = x.count / merged
        let gathered = postShuffleNorm ? norm(x.reshaped([rows, merged])) : norm(x).reshaped([rows, merged])
        var h = fc1(gathered)
        Activation.gelu.apply(&h)
        return fc2(h)
    }
}

/// transformers' `Qwen3VLVisionBlock`.
struct Qwen3VLVisionBlock {
    let norm1, norm2: LayerNorm
    let qkv, proj: Linear
    let fc1, fc2: Linear
    let heads: Int
    let act: Activation

    init(_ w: Weights, config c: Qwen3VLVisionConfig) throws {
        let d = c.hiddenSize
        norm1 = try LayerNorm(w["norm1"], dim: d, eps: 1e-6)
        norm2 = try LayerNorm(w["norm2"], dim: d, eps: 1e-6)
        qkv = try Linear(w["attn"]["qkv"], inFeatures: d, outFeatures: 3 * d)
        proj = try Linear(w["attn"]["proj"], inFeatures: d, outFeatures: d)
        fc1 = try Linear(w["mlp"]["linear_fc1"], inFeatures: d, outFeatures: c.intermediateSize)
        fc2 = try Linear(w["mlp"]["linear_fc2"], inFeatures: c.intermediateSize, outFeatures: d)
        heads = c.numHeads
        act = c.hiddenAct
    }

    /// x: [N, D] for all images; `sequences` are the [start, end) rows that attend to
    /// each other (one per frame, as `cu_seqlens`).
    func callAsFunction(_ x: Tensor, rope: RotaryAngles, sequences: [Range<Int>]) -> Tensor {
        let d = x.shape[1]
        let packed = qkv(norm1(x))  // [N, 3D]: q | k | v
        let n = x.shape[0]
        var q = Tensor(uninitialized: [n, d]), k = Tensor(uninitialized: [n, d]), v = Tensor(uninitialized: [n, d])
        for r in 0..<n {
            for j in 0..<d {
                q.data[r * d + j] = packed.data[r * 3 * d + j]
                k.data[r * d + j] = packed.data[r * 3 * d + d + j]
                v.data[r * d + j] = packed.data[r * 3 * d + 2 * d + j]
            }
        }
        rope.apply(&q, heads: heads)
        rope.apply(&k, heads: heads)
        var attended = Tensor(uninitialized: [n, d])
        for s in sequences {
            func slice(_ t: Tensor) -> Tensor {
                Tensor(shape: [1, s.count, d], data: Array(t.data[(s.lowerBound * d)..<(s.upperBound * d)]))
            }
            let o = MultiHeadAttention.callAsFunction(q: slice(q), k: slice(k), v: slice(v), heads: heads)
            attended.data.replaceSubrange((s.lowerBound * d)..<(s.upperBound * d), with: o.data)
        }
        var h = x
        addInPlace(&h, proj(attended))
        var m = fc1(norm2(h))
        act.apply(&m)
        addInPlace(&h, fc2(m))
        return h
    }
}

/// transformers' `Qwen3VLVisionModel`: patch embedding (a Conv3d whose stride equals its
/// kernel, i.e. a linear map of each flattened patch), bilinearly interpolated learned
/// position embeddings, 2-D rotary attention blocks, the patch merger and the deepstack
/// mergers fed by intermediate blocks.
public final class Qwen3VLVisionModel: Sendable {
    public let config: Qwen3VLVisionConfig
    let patchEmbed: LinearKernel
    let posEmbed: [Float]
    let blocks: [Qwen3VLVisionBlock]
    let merger: Qwen3VLVisionPatchMerger
    let deepstackMergers: [Qwen3VLVisionPatchMerger]

    public struct Output: Sendable {
        /// [Σ merged tokens, out_hidden]
        public var imageEmbeds: Tensor
        /// One [Σ merged tokens, out_hidden] per deepstack index.
        public var deepstack: [Tensor]
    }

    public init(config c: Qwen3VLVisionConfig, weights w: Weights) throws {
        config = c
        let weight = try w["patch_embed"]["proj"].load(
            "weight", shape: [c.hiddenSize, c.inChannels, c.temporalPatchSize, c.patchSize, c.patchSize])
        let bias = try w["patch_embed"]["proj"].load("bias", shape: [c.hiddenSize], role: .bias)
        patchEmbed = LinearKernel(weight: weight, bias: bias, inFeatures: c.patchDim, outFeatures: c.hiddenSize)
        posEmbed = try w["pos_embed"].load("weight", shape: [c.numPositionEmbeddings, c.hiddenSize])
        blocks = try (0..<c.depth).map { try Qwen3VLVisionBlock(w["blocks"]["\($0)"], config: c) }
        merger = try Qwen3VLVisionPatchMerger(w["merger"], config: c, postShuffleNorm: false)
        deepstackMergers = try c.deepstackVisualIndexes.indices.map {
            try Qwen3VLVisionPatchMerger(w["deepstack_merger_list"]["\($0)"], config: c, postShuffleNorm: true)
        }
        for i in c.deepstackVisualIndexes where i < 0 || i >= c.depth {
            throw ModelError.invalidConfig(file: "vision_config", key: "deepstack_visual_indexes",
                                           reason: "index \(i) is outside the \(c.depth) vision blocks")
        }
    }

    /// - Parameters: pixelValues [Σ patches, C·Tp·P·P] in the processor's merge-block order.
    public func callAsFunction(pixelValues: Tensor, grids: [GridTHW]) throws -> Output {
        let c = config
        let total = grids.reduce(0) { $0 + $1.patches }
        guard pixelValues.rank == 2, pixelValues.shape[1] == c.patchDim, pixelValues.shape[0] == total else {
            throw ModelError.invalidInput(
                name: "pixel_values",
                reason: "has shape \(pixelValues.shape), expected [\(total), \(c.patchDim)] for image_grid_thw \(grids.map { [$0.t, $0.h, $0.w] })")
        }
        for g in grids where g.h % c.spatialMergeSize != 0 || g.w % c.spatialMergeSize != 0 {
            throw ModelError.invalidInput(name: "image_grid_thw",
                                          reason: "grid \(g.h)×\(g.w) is not a multiple of spatial_merge_size \(c.spatialMergeSize)")
        }
        var h = patchEmbed(pixelValues)
        addInPlace(&h, interpolatedPositionEmbeddings(grids))
        let rope = rotaryAngles(grids)
        var sequences: [Range<Int>] = []
        var start = 0
        for g in grids {
            for _ in 0..<g.t {
                sequences.append(start..<(start + g.h * g.w))
                start += g.h * g.w
            }
        }
        var deepstack: [Tensor] = []
        for (i, block) in blocks.enumerated() {
            h = block(h, rope: rope, sequences: sequences)
            if let k = c.deepstackVisualIndexes.firstIndex(of: i) { deepstack.append(deepstackMergers[k](h)) }
        }
        return Output(imageEmbeds: merger(h), deepstack: deepstack)
    }

    /// (row, col) of each patch: patches come in spatial-merge-block order
    /// (block_row, block_col, in_row, in_col), repeated for every frame.
    private func patchCoordinates(_ grids: [GridTHW]) -> [(Int, Int)] {
        let m = config.spatialMergeSize
        var coords: [(Int, Int)] = []
        for g in grids {
            for _ in 0..<g.t {
                for br in 0..<(g.h / m) { for bc in 0..<(g.w / m) { for ir in 0..<m { for ic in 0..<m {
                    coords.append((br * m + ir, bc * m + ic))
                } } } }
            }
        }
        return coords
    }

    /// The learned side×side position table resampled bilinearly (align_corners=True)
    /// to each image's grid, as transformers' get_vision_interpolation_indices_and_weights.
    private func interpolatedPositionEmbeddings(_ grids: [GridTHW]) -> Tensor {
        let d = config.hiddenSize
        let side = Int(Double(config.numPositionEmbeddings).squareRoot())
        var sizes: [(Int, Int)] = []
        for g in grids { for _ in 0..<g.patches { sizes.append((g.h, g.w)) } }
        let coords = patchCoordinates(grids)
        var out = Tensor(zeros: [coords.count, d])
        func taps(_ index: Int, _ size: Int) -> [(Int, Float)] {
            let src = Float(index) * Float(side - 1) / Float(max(size - 1, 1))
            let f = src.rounded(.down)
            return (0..<2).map { o in
                let tap = min(max(Int(f) + o, 0), side - 1)
                return (tap, max(0, 1 - abs(src - f - Float(o))))
            }
        }
        for (p, (row, col)) in coords.enumerated() {
            let (gh, gw) = sizes[p]
            for (hy, wy) in taps(row, gh) {
                for (hx, wx) in taps(col, gw) {
                    let weight = wy * wx
                    if weight == 0 { continue }
                    let src = (hy * side + hx) * d
                    for j in 0..<d { out.data[p * d + j] += posEmbed[src + j] * weight }
                }
            }
        }
        return out
    }

    /// Axial 2-D RoPE: the first head_dim/4 frequencies follow the row, the next the column.
    private func rotaryAngles(_ grids: [GridTHW]) -> RotaryAngles {
        let spatial = config.headDim / 2
        let inv = (0..<(spatial / 2)).map { i in 1 / Foundation.pow(config.ropeTheta, Float(2 * i) / Float(spatial)) }
        let coords = patchCoordinates(grids)
        var angles = [Float](repeating: 0, count: coords.count * spatial)
        for (p, (row, col)) in coords.enumerated() {
            for i in 0..<inv.count {
                angles[p * spatial + i] = Float(row) * inv[i]
                angles[p * spatial + inv.count + i] = Float(col) * inv[i]
            }
        }
        return RotaryAngles(angles: angles, rows: coords.count, halfDim: spatial)
    }
}
