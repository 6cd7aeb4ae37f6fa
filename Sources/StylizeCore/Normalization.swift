/// GroupNorm over NHWC tensors, optionally fused with the activation that follows it
/// in every ResNet block (one pass over memory instead of two).
public struct GroupNormKernel: Sendable {
    public let groups: Int
    public let channels: Int
    public let eps: Float
    public let gamma: [Float]
    public let beta: [Float]

    public init(groups: Int, channels: Int, eps: Float, gamma: [Float], beta: [Float]) {
        precondition(channels % groups == 0, "GroupNorm: \(channels) channels not divisible by \(groups) groups")
        self.groups = groups
        self.channels = channels
        self.eps = eps
        self.gamma = gamma
        self.beta = beta
    }

    public func callAsFunction(_ x: Tensor, activation: Activation = .identity) -> Tensor {
        OpProfile.section(.normalization) { normalize(x, activation: activation) }
    }

    private func normalize(_ x: Tensor, activation: Activation) -> Tensor {
        precondition(x.shape.last == channels, "GroupNorm: input \(x.shape) does not have \(channels) channels")
        let batch = x.shape[0]
        let pixels = x.count / (batch * channels)
        var out = Tensor(uninitialized: x.shape)
        // A batch's images run in lanes of their own, each image on one thread: at the
        // small latents of a working-scale frame, three thread hand-offs per image cost
        // more than the pass itself (two threads ran GroupNorm slower than one). The
        // sums are split by the process-wide thread count either way (ChannelSums), so
        // the output is the same to the bit whichever way the batch is spread.
        let lanes = min(ThreadBudget.available, batch)
        // Per-call scratch, made on the calling thread and reused by every image of a lane.
        var scratch = (0..<max(1, lanes)).map { _ in GroupNormScratch(groups: groups, pixels: pixels, channels: channels) }
        x.data.withUnsafeBufferPointer { sbuf in
            out.data.withUnsafeMutableBufferPointer { obuf in
                scratch.withUnsafeMutableBufferPointer { lanesScratch in
                    let s = sbuf.baseAddress!, o = obuf.baseAddress!, ls = lanesScratch.baseAddress!
                    let image = pixels * channels
                    if lanes <= 1 {
                        for b in 0..<batch { normalizeImage(s + b * image, o + b * image, &ls[0], activation: activation) }
                        return
                    }
                    let chunk = (batch + lanes - 1) / lanes
                    parallelLanes(batch) { range in
                        let own = ls + range.lowerBound / chunk
                        for b in range { normalizeImage(s + b * image, o + b * image, &own.pointee, activation: activation) }
                    }
                }
            }
        }
        return out
    }

    private func normalizeImage(_ base: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>,
                                _ t: inout GroupNormScratch, activation: Activation) {
        let c = channels, g = groups, cg = c / g
        // Two-pass statistics in Double: groups can hold millions of values.
        for i in 0..<c { t.mean[i] = 0; t.sq[i] = 0 }
        for i in 0..<g { t.groupMean[i] = 0; t.groupVar[i] = 0 }
        t.sums.run(base, into: &t.mean, center: nil)
        for ch in 0..<c { t.groupMean[ch / cg] += t.mean[ch] }
        let n = Double(t.sums.pixels * cg)
        for i in 0..<g { t.groupMean[i] /= n }
        for ch in 0..<c { t.centre[ch] = Float(t.groupMean[ch / cg]) }
        t.sums.run(base, into: &t.sq, center: t.centre)
        for ch in 0..<c { t.groupVar[ch / cg] += t.sq[ch] }
        for ch in 0..<c {
            let gi = ch / cg
            let rstd = 1 / (t.groupVar[gi] / n + Double(eps)).squareRoot()
            t.scale[ch] = Float(rstd * Double(gamma[ch]))
            t.shift[ch] = Float(Double(beta[ch]) - t.groupMean[gi] * rstd * Double(gamma[ch]))
        }
        applyChannelAffine(base, o, pixels: t.sums.pixels, channels: c,
                           scale: t.scale, shift: t.shift, activation: activation)
    }
}

/// One lane's GroupNorm scratch: per-channel and per-group statistics of the image in hand.
struct GroupNormScratch {
    var mean: [Double], sq: [Double]
    var groupMean: [Double], groupVar: [Double]
    var centre: [Float], scale: [Float], shift: [Float]
    var sums: ChannelSums

    init(groups: Int, pixels: Int, channels c: Int) {
        mean = [Double](repeating: 0, count: c)
        sq = [Double](repeating: 0, count: c)
        groupMean = [Double](repeating: 0, count: groups)
        groupVar = [Double](repeating: 0, count: groups)
        centre = [Float](repeating: 0, count: c)
        scale = [Float](repeating: 0, count: c)
        shift = [Float](repeating: 0, count: c)
        sums = ChannelSums(pixels: pixels, channels: c)
    }
}

/// Per-channel Σx (center == nil) or Σ(x − center)² of one image, accumulated in Float
/// over short runs of pixels and in Double across runs, split over threads; its scratch
/// is made once and reused for every image of a call.
struct ChannelSums {
    let pixels: Int
    let channels: Int
    /// Parts by the process-wide count, not the caller's budget: the sums (and so the
    /// output's last bits) stay the same whichever thread runs this.
    let parts: Int
    private var partials: [Double]   // parts × channels
    private var runs: [Float]        // parts × channels

    init(pixels: Int, channels: Int) {
        self.pixels = pixels
        self.channels = channels
        parts = min(ThreadBudget.threads, max(1, pixels / 256))
        partials = [Double](repeating: 0, count: parts * channels)
        runs = [Float](repeating: 0, count: parts * channels)
    }

    mutating func run(_ p: UnsafePointer<Float>, into acc: inout [Double], center: [Float]?) {
        let (c, pixels, parts) = (channels, self.pixels, self.parts)
        let chunk = (pixels + parts - 1) / parts
        partials.withUnsafeMutableBufferPointer { pb in
            runs.withUnsafeMutableBufferPointer { rb in
                let (partsBase, runsBase) = (pb.baseAddress!, rb.baseAddress!)
                parallelRanges(parts) { tr in
                    for t in tr {
                        let local = partsBase + t * c, r = runsBase + t * c
                        for i in 0..<c { local[i] = 0 }
                        let lo = t * chunk, hi = min(pixels, lo + chunk)
                        var px = lo
                        while px < hi {
                            let end = min(hi, px + 64)
                            for i in 0..<c { r[i] = 0 }
                            if let center {
                                center.withUnsafeBufferPointer { cb in
                                    for q in px..<end {
                                        let row = p + q * c
                                        for i in 0..<c { let d = row[i] - cb[i]; r[i] += d * d }
                                    }
                                }
                            } else {
                                for q in px..<end {
                                    let row = p + q * c
                                    for i in 0..<c { r[i] += row[i] }
                                }
                            }
                            for i in 0..<c { local[i] += Double(r[i]) }
                            px = end
                        }
                    }
                }
            }
        }
        for t in 0..<parts { for i in 0..<c { acc[i] += partials[t * c + i] } }
    }
}

/// out = act(x · scale[c] + shift[c]) for each pixel.
func applyChannelAffine(_ x: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>,
                        pixels: Int, channels c: Int, scale: [Float], shift: [Float],
                        activation: Activation) {
    scale.withUnsafeBufferPointer { sb in
        shift.withUnsafeBufferPointer { tb in
            let sc = sb.baseAddress!, sh = tb.baseAddress!
            parallelRanges(pixels, minPerThread: 64) { r in
                for px in r {
                    let src = x + px * c, dst = o + px * c
                    var j = 0
                    while j + 8 <= c {
                        vstore(activation.apply(vload(src + j) * vload(sc + j) + vload(sh + j)), dst + j)
                        j += 8
                    }
                    if j < c {
                        var v = Vec8(repeating: 0)
                        for i in j..<c { v[i - j] = src[i] * sc[i] + sh[i] }
                        v = activation.apply(v)
                        for i in j..<c { dst[i] = v[i - j] }
                    }
                }
            }
        }
    }
}

/// LayerNorm over the last dimension (optionally without affine parameters).
public struct LayerNormKernel: Sendable {
    public let dim: Int
    public let eps: Float
    public let gamma: [Float]?
    public let beta: [Float]?

    public init(dim: Int, eps: Float, gamma: [Float]?, beta: [Float]?) {
        self.dim = dim
        self.eps = eps
        self.gamma = gamma
        self.beta = beta
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        OpProfile.section(.normalization) { normalize(x) }
    }

    private func normalize(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == dim, "LayerNorm: input \(x.shape) does not end in \(dim)")
        let rows = x.count / dim, d = dim
        var out = Tensor(uninitialized: x.shape)
        let g = gamma ?? [Float](repeating: 1, count: d)
        let bt = beta ?? [Float](repeating: 0, count: d)
        x.data.withUnsafeBufferPointer { sb in
            out.data.withUnsafeMutableBufferPointer { ob in
                g.withUnsafeBufferPointer { gb in
                    bt.withUnsafeBufferPointer { bb in
                        let s = sb.baseAddress!, o = ob.baseAddress!
                        parallelRanges(rows, minPerThread: 32) { r in
                            for row in r {
                                let src = s + row * d, dst = o + row * d
                                var sum: Float = 0
                                for i in 0..<d { sum += src[i] }
                                let mean = sum / Float(d)
                                var sq: Float = 0
                                for i in 0..<d { let v = src[i] - mean; sq += v * v }
                                let rstd = 1 / (sq / Float(d) + eps).squareRoot()
                                for i in 0..<d { dst[i] = (src[i] - mean) * rstd * gb[i] + bb[i] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}

/// RMSNorm over the last dimension: x / sqrt(mean(x²) + eps) · weight (Qwen / T5 style).
public struct RMSNormKernel: Sendable {
    public let dim: Int
    public let eps: Float
    public let weight: [Float]

    public init(dim: Int, eps: Float, weight: [Float]) {
        self.dim = dim
        self.eps = eps
        self.weight = weight
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        OpProfile.section(.normalization) { normalize(x) }
    }

    private func normalize(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == dim, "RMSNorm: input \(x.shape) does not end in \(dim)")
        let rows = x.count / dim, d = dim
        var out = Tensor(uninitialized: x.shape)
        x.data.withUnsafeBufferPointer { sb in
            out.data.withUnsafeMutableBufferPointer { ob in
                weight.withUnsafeBufferPointer { wb in
                    let s = sb.baseAddress!, o = ob.baseAddress!
                    parallelRanges(rows, minPerThread: 32) { r in
                        for row in r {
                            let src = s + row * d, dst = o + row * d
                            var sq: Float = 0
                            for i in 0..<d { sq += src[i] * src[i] }
                            let rstd = 1 / (sq / Float(d) + eps).squareRoot()
                            for i in 0..<d { dst[i] = src[i] * rstd * wb[i] }
                        }
                    }
                }
            }
        }
        return out
    }
}
