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
        let c = channels, g = groups, cg = c / g
        let batch = x.shape[0]
        let pixels = x.count / (batch * c)
        var out = Tensor(uninitialized: x.shape)
        // Per-call scratch, reused by every image of the batch (the hot path runs this
        // dozens of times per frame: per-image arrays were half of its mallocs).
        var mean = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        var groupMean = [Double](repeating: 0, count: g), groupVar = [Double](repeating: 0, count: g)
        var centre = [Float](repeating: 0, count: c)
        var scale = [Float](repeating: 0, count: c), shift = [Float](repeating: 0, count: c)
        var sums = ChannelSums(pixels: pixels, channels: c)
        x.data.withUnsafeBufferPointer { sbuf in
            out.data.withUnsafeMutableBufferPointer { obuf in
                let s = sbuf.baseAddress!, o = obuf.baseAddress!
                for b in 0..<batch {
                    let base = s + b * pixels * c
                    // Two-pass statistics in Double: groups can hold millions of values.
                    for i in 0..<c { mean[i] = 0; sq[i] = 0 }
                    for i in 0..<g { groupMean[i] = 0; groupVar[i] = 0 }
                    sums.run(base, into: &mean, center: nil)
                    for ch in 0..<c { groupMean[ch / cg] += mean[ch] }
                    let n = Double(pixels * cg)
                    for i in 0..<g { groupMean[i] /= n }
                    for ch in 0..<c { centre[ch] = Float(groupMean[ch / cg]) }
                    sums.run(base, into: &sq, center: centre)
                    for ch in 0..<c { groupVar[ch / cg] += sq[ch] }
                    for ch in 0..<c {
                        let gi = ch / cg
                        let rstd = 1 / (groupVar[gi] / n + Double(eps)).squareRoot()
                        scale[ch] = Float(rstd * Double(gamma[ch]))
                        shift[ch] = Float(Double(beta[ch]) - groupMean[gi] * rstd * Double(gamma[ch]))
                    }
                    applyChannelAffine(base, o + b * pixels * c, pixels: pixels, channels: c,
                                       scale: scale, shift: shift, activation: activation)
                }
            }
        }
        return out
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
