/// Direct convolution for narrow layers (≤ 32 output channels), NHWC.
///
/// im2col + sgemm is poor when the GEMM has ≤ 16 columns (OpenBLAS reaches ~20 % of peak
/// on TAESD-width layers), so narrow convolutions broadcast one input value at a time
/// against a vector of output-channel weights, for four output pixels at once: per
/// (tap, input channel) that is V weight loads, 4 broadcasts and 4·V multiply-adds.
/// `addingProduct` becomes vfmadd231ps when the target has FMA (release builds target
/// Haswell); `+=` of a product stays a separate vmulps + vaddps.
struct DirectConvPlan {
    let cin: Int, cout: Int, kh: Int, kw: Int, stride: Int
    let padding: (top: Int, left: Int, bottom: Int, right: Int)
    /// Output channels rounded up to whole SIMD8 vectors.
    let vectors: Int
    /// [kh][kw][cin][vectors·8], zero in the padded lanes.
    let weights: [Float]
    let bias: [Float]  // vectors·8
    /// Where output (0, 0)'s window starts in the padded input: (0, 0) for a plain
    /// convolution; UpsampledConvPlan's phases start one row or column further.
    let origin: (y: Int, x: Int)

    static let maxOutputChannels = 32

    init(packedWeight: [Float], bias: [Float]?, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int,
         padding: (top: Int, left: Int, bottom: Int, right: Int), origin: (y: Int, x: Int) = (0, 0)) {
        self.origin = origin
        self.cin = cin
        self.cout = cout
        self.kh = kh
        self.kw = kw
        self.stride = stride
        self.padding = padding
        precondition(cout <= Self.maxOutputChannels, "DirectConvPlan: \(cout) output channels, at most \(Self.maxOutputChannels)")
        vectors = (cout + 7) / 8
        let lanes = vectors * 8
        var w = [Float](repeating: 0, count: kh * kw * cin * lanes)
        // packedWeight is [cout][kh][kw][cin].
        for o in 0..<cout { for y in 0..<kh { for x in 0..<kw { for i in 0..<cin {
            w[((y * kw + x) * cin + i) * lanes + o] = packedWeight[((o * kh + y) * kw + x) * cin + i]
        } } } }
        weights = w
        var b = [Float](repeating: 0, count: lanes)
        if let bias { for o in 0..<cout { b[o] = bias[o] } }
        self.bias = b
    }

    func callAsFunction(_ x: Tensor, outHeight oh: Int, outWidth ow: Int) -> Tensor {
        let padded = Self.pad(x, padding)
        var out = Tensor(uninitialized: [x.n, oh, ow, cout])
        FlopCounter.add(2 * x.n * oh * ow * cout * cin * kh * kw)
        padded.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                let (s, d) = (src.baseAddress!, dst.baseAddress!)
                parallelRanges(x.n * oh, minPerThread: 2) { rows in
                    for row in rows {
                        let (b, oy) = (row / oh, row % oh)
                        run(s, ph: padded.h, pw: padded.w, b: b, oy: oy, ow: ow,
                            into: d + ((b * oh + oy) * ow) * cout, pixelStride: cout)
                    }
                }
            }
        }
        return out
    }

    /// x zero-padded once, so the inner loops never test bounds (x itself when no padding).
    static func pad(_ x: Tensor, _ padding: (top: Int, left: Int, bottom: Int, right: Int)) -> Tensor {
        if padding == (0, 0, 0, 0) { return x }
        let (n, h, w, c) = (x.n, x.h, x.w, x.c)
        let ph = h + padding.top + padding.bottom, pw = w + padding.left + padding.right
        var p = Tensor(zeros: [n, ph, pw, c])
        x.data.withUnsafeBufferPointer { src in
            p.data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n { for y in 0..<h {
                    (dst.baseAddress! + ((b * ph + y + padding.top) * pw + padding.left) * c)
                        .update(from: src.baseAddress! + ((b * h + y) * w) * c, count: w * c)
                } }
            }
        }
        return p
    }

    /// One output row of image `b`: output row `oy` reads padded input rows from
    /// `oy · stride + origin.y`, columns from `origin.x`; its pixels go to `o`,
    /// `pixelStride` floats apart (`cout` for a plain output, more when interleaving).
    @inline(__always)
    func run(_ s: UnsafePointer<Float>, ph: Int, pw: Int, b: Int, oy: Int, ow: Int,
             into o: UnsafeMutablePointer<Float>, pixelStride: Int) {
        let input = s + ((b * ph + oy * stride + origin.y) * pw + origin.x) * cin
        weights.withUnsafeBufferPointer { wb in
            bias.withUnsafeBufferPointer { bb in
                let (wp, bp) = (wb.baseAddress!, bb.baseAddress!)
                switch vectors {
                case 1: Self.row1(input, wp, bp, o, ops: pixelStride, plan: self, pw: pw, ow: ow)
                case 2: Self.row2(input, wp, bp, o, ops: pixelStride, plan: self, pw: pw, ow: ow)
                // vectors ≤ 4: plans exist only for cout ≤ maxOutputChannels
                default: Self.row4(input, wp, bp, o, ops: pixelStride, plan: self, pw: pw, ow: ow)
                }
            }
        }
    }

    @inline(__always)
    private static func store(_ v: Vec8, _ d: UnsafeMutablePointer<Float>, count: Int) {
        if count == 8 { vstore(v, d) } else { for i in 0..<count { d[i] = v[i] } }
    }

    /// One output row, ≤ 8 output channels.
    private static func row1(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, ops: Int, plan p: DirectConvPlan, pw: Int, ow: Int) {
        let (cin, st, cout) = (p.cin, p.stride, p.cout)
        let bias = vload(bp)
        var ox = 0
        while ox < ow {
            let count = min(4, ow - ox)
            var a0 = bias, a1 = bias, a2 = bias, a3 = bias
            for ky in 0..<p.kh {
                let rowBase = s + ky * pw * cin
                for kx in 0..<p.kw {
                    let wTap = wp + (ky * p.kw + kx) * cin * 8
                    let i0 = rowBase + ((ox) * st + kx) * cin
                    let i1 = rowBase + ((min(ox + 1, ow - 1)) * st + kx) * cin
                    let i2 = rowBase + ((min(ox + 2, ow - 1)) * st + kx) * cin
                    let i3 = rowBase + ((min(ox + 3, ow - 1)) * st + kx) * cin
                    for ci in 0..<cin {
                        let wv = vload(wTap + ci * 8)
                        a0 += Vec8(repeating: i0[ci]) * wv
                        a1 += Vec8(repeating: i1[ci]) * wv
                        a2 += Vec8(repeating: i2[ci]) * wv
                        a3 += Vec8(repeating: i3[ci]) * wv
                    }
                }
            }
            let o = d + ox * ops
            store(a0, o, count: cout)
            if count > 1 { store(a1, o + ops, count: cout) }
            if count > 2 { store(a2, o + 2 * ops, count: cout) }
            if count > 3 { store(a3, o + 3 * ops, count: cout) }
            ox += 4
        }
    }

    /// One output row, 9–16 output channels.
    private static func row2(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, ops: Int, plan p: DirectConvPlan, pw: Int, ow: Int) {
        let (cin, st, cout) = (p.cin, p.stride, p.cout)
        let (b0, b1) = (vload(bp), vload(bp + 8))
        var ox = 0
        while ox < ow {
            let count = min(4, ow - ox)
            var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
            for ky in 0..<p.kh {
                let rowBase = s + ky * pw * cin
                for kx in 0..<p.kw {
                    let wTap = wp + (ky * p.kw + kx) * cin * 16
                    let i0 = rowBase + ((ox) * st + kx) * cin
                    let i1 = rowBase + ((min(ox + 1, ow - 1)) * st + kx) * cin
                    let i2 = rowBase + ((min(ox + 2, ow - 1)) * st + kx) * cin
                    let i3 = rowBase + ((min(ox + 3, ow - 1)) * st + kx) * cin
                    for ci in 0..<cin {
                        let w0 = vload(wTap + ci * 16), w1 = vload(wTap + ci * 16 + 8)
                        let x0 = Vec8(repeating: i0[ci]), x1 = Vec8(repeating: i1[ci])
                        let x2 = Vec8(repeating: i2[ci]), x3 = Vec8(repeating: i3[ci])
                        a00 = a00.addingProduct(x0, w0); a01 = a01.addingProduct(x0, w1)
                        a10 = a10.addingProduct(x1, w0); a11 = a11.addingProduct(x1, w1)
                        a20 = a20.addingProduct(x2, w0); a21 = a21.addingProduct(x2, w1)
                        a30 = a30.addingProduct(x3, w0); a31 = a31.addingProduct(x3, w1)
                    }
                }
            }
            let o = d + ox * ops
            let tail = cout - 8
            vstore(a00, o); store(a01, o + 8, count: tail)
            if count > 1 { vstore(a10, o + ops); store(a11, o + ops + 8, count: tail) }
            if count > 2 { vstore(a20, o + 2 * ops); store(a21, o + 2 * ops + 8, count: tail) }
            if count > 3 { vstore(a30, o + 3 * ops); store(a31, o + 3 * ops + 8, count: tail) }
            ox += 4
        }
    }

    /// One output row, 17–32 output channels: two pixels × four vectors per iteration
    /// (weights are padded to four vectors, so 17–24 channels waste one lane group).
    private static func row4(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, ops: Int, plan p: DirectConvPlan, pw: Int, ow: Int) {
        let (cin, st, cout, lanes) = (p.cin, p.stride, p.cout, p.vectors * 8)
        let b0 = vload(bp), b1 = vload(bp + 8), b2 = vload(bp + 16)
        let b3 = lanes > 24 ? vload(bp + 24) : Vec8(repeating: 0)
        var ox = 0
        while ox < ow {
            let pair = ox + 1 < ow
            var a0 = b0, a1 = b1, a2 = b2, a3 = b3
            var c0 = b0, c1 = b1, c2 = b2, c3 = b3
            for ky in 0..<p.kh {
                let rowBase = s + ky * pw * cin
                for kx in 0..<p.kw {
                    let wTap = wp + (ky * p.kw + kx) * cin * lanes
                    let i0 = rowBase + (ox * st + kx) * cin
                    let i1 = rowBase + ((pair ? ox + 1 : ox) * st + kx) * cin
                    if lanes > 24 {
                        for ci in 0..<cin {
                            let w = wTap + ci * lanes
                            let w0 = vload(w), w1 = vload(w + 8), w2 = vload(w + 16), w3 = vload(w + 24)
                            let x0 = Vec8(repeating: i0[ci]), x1 = Vec8(repeating: i1[ci])
                            a0 = a0.addingProduct(x0, w0); a1 = a1.addingProduct(x0, w1); a2 = a2.addingProduct(x0, w2); a3 = a3.addingProduct(x0, w3)
                            c0 = c0.addingProduct(x1, w0); c1 = c1.addingProduct(x1, w1); c2 = c2.addingProduct(x1, w2); c3 = c3.addingProduct(x1, w3)
                        }
                    } else {
                        for ci in 0..<cin {
                            let w = wTap + ci * lanes
                            let w0 = vload(w), w1 = vload(w + 8), w2 = vload(w + 16)
                            let x0 = Vec8(repeating: i0[ci]), x1 = Vec8(repeating: i1[ci])
                            a0 = a0.addingProduct(x0, w0); a1 = a1.addingProduct(x0, w1); a2 = a2.addingProduct(x0, w2)
                            c0 = c0.addingProduct(x1, w0); c1 = c1.addingProduct(x1, w1); c2 = c2.addingProduct(x1, w2)
                        }
                    }
                }
            }
            let o = d + ox * ops
            store4(a0, a1, a2, a3, o, cout: cout)
            if pair { store4(c0, c1, c2, c3, o + ops, cout: cout) }
            ox += 2
        }
    }

    @inline(__always)
    private static func store4(_ v0: Vec8, _ v1: Vec8, _ v2: Vec8, _ v3: Vec8, _ o: UnsafeMutablePointer<Float>, cout: Int) {
        vstore(v0, o)
        vstore(v1, o + 8)
        store(v2, o + 16, count: min(8, cout - 16))
        if cout > 24 { store(v3, o + 24, count: cout - 24) }
    }
}

/// Nearest-neighbour 2× upsampling followed by a 3×3, stride-1, zero-padded-by-1
/// convolution (TAESD's decoder: `nn.Upsample(scale_factor=2)` then `conv`), computed on
/// the small input. Each output pixel (2i + py, 2j + px) sees only a 2×2 block of input
/// pixels, so each of the four phases (py, px) is a 2×2 convolution whose taps sum the
/// 3×3 taps that land on the same input pixel: 4 multiply-adds per channel pair where
/// the upsampled convolution does 9, and the 4×-sized upsampled tensor is never made.
/// Outputs match upsample-then-convolve up to the order of the float sums.
public struct UpsampledConvPlan: Sendable {
    let phases: [DirectConvPlan]  // py · 2 + px
    public let cin: Int, cout: Int

    /// Narrow layers only (the direct convolution's range).
    public static func applies(cin: Int, cout: Int) -> Bool { cout <= DirectConvPlan.maxOutputChannels }

    /// The plan for a 3×3, stride-1, padding-1 convolution; nil for any other, or one too
    /// wide for the direct kernels (those keep upsample-then-convolve).
    public init?(_ conv: Conv2dKernel) {
        guard conv.kernelH == 3, conv.kernelW == 3, conv.stride == 1, conv.padding == (1, 1, 1, 1),
              Self.applies(cin: conv.inChannels, cout: conv.outChannels) else { return nil }
        self.init(packedWeight: conv.packedWeight, bias: conv.bias, cin: conv.inChannels, cout: conv.outChannels)
    }

    /// - Parameter packedWeight: [Cout, 3, 3, Cin] (Conv2dKernel's packing).
    public init(packedWeight: [Float], bias: [Float]?, cin: Int, cout: Int) {
        precondition(packedWeight.count == cout * cin * 9 && Self.applies(cin: cin, cout: cout))
        self.cin = cin
        self.cout = cout
        // Phase p of an axis: which of the 2 input taps each 3×3 tap k lands on
        // (p = 0: k 0 → tap 0, k 1, 2 → tap 1; p = 1: k 0, 1 → tap 0, k 2 → tap 1).
        func tap(_ p: Int, _ k: Int) -> Int { p == 0 ? (k == 0 ? 0 : 1) : (k == 2 ? 1 : 0) }
        var phases: [DirectConvPlan] = []
        for py in 0..<2 { for px in 0..<2 {
            var packed = [Float](repeating: 0, count: cout * 4 * cin)  // [cout][2][2][cin]
            for o in 0..<cout { for i in 0..<cin { for ky in 0..<3 { for kx in 0..<3 {
                packed[((o * 2 + tap(py, ky)) * 2 + tap(px, kx)) * cin + i] += packedWeight[((o * 3 + ky) * 3 + kx) * cin + i]
            } } } }
            phases.append(DirectConvPlan(packedWeight: packed, bias: bias, cin: cin, cout: cout, kh: 2, kw: 2,
                                         stride: 1, padding: (1, 1, 1, 1), origin: (py, px)))
        } }
        self.phases = phases
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.c == cin, "UpsampledConv: input \(x.shape) does not have \(cin) channels")
        let (n, h, w) = (x.n, x.h, x.w)
        let padded = DirectConvPlan.pad(x, (1, 1, 1, 1))
        var out = Tensor(uninitialized: [n, 2 * h, 2 * w, cout])
        FlopCounter.add(2 * n * 4 * h * w * cout * cin * 9)  // counted as the upsampled 3×3 convolution
        padded.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                let (s, d) = (src.baseAddress!, dst.baseAddress!)
                // One item = one input row of one image in one phase: an output row's every other pixel.
                parallelRanges(4 * n * h, minPerThread: 2) { items in
                    for item in items {
                        let (phase, row) = (item / (n * h), item % (n * h))
                        let (b, i) = (row / h, row % h)
                        let (py, px) = (phase / 2, phase % 2)
                        phases[phase].run(s, ph: h + 2, pw: w + 2, b: b, oy: i, ow: w,
                                          into: d + ((b * 2 * h + 2 * i + py) * 2 * w + px) * cout, pixelStride: 2 * cout)
                    }
                }
            }
        }
        return out
    }
}
