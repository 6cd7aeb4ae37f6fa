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

    static let maxOutputChannels = 32

    init(packedWeight: [Float], bias: [Float]?, cin: Int, cout: Int, kh: Int, kw: Int, stride: Int,
         padding: (top: Int, left: Int, bottom: Int, right: Int)) {
        self.cin = cin
        self.cout = cout
        self.kh = kh
        self.kw = kw
        self.stride = stride
        self.padding = padding
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
        let (n, h, w) = (x.n, x.h, x.w)
        // Zero-pad once so the inner loops never test bounds.
        let ph = h + padding.top + padding.bottom, pw = w + padding.left + padding.right
        let padded: Tensor
        if padding == (0, 0, 0, 0) {
            padded = x
        } else {
            var p = Tensor(zeros: [n, ph, pw, cin])
            x.data.withUnsafeBufferPointer { src in
                p.data.withUnsafeMutableBufferPointer { dst in
                    for b in 0..<n { for y in 0..<h {
                        (dst.baseAddress! + ((b * ph + y + padding.top) * pw + padding.left) * cin)
                            .update(from: src.baseAddress! + ((b * h + y) * w) * cin, count: w * cin)
                    } }
                }
            }
            padded = p
        }
        var out = Tensor(uninitialized: [n, oh, ow, cout])
        let lanes = vectors * 8
        FlopCounter.add(2 * n * oh * ow * cout * cin * kh * kw)
        padded.data.withUnsafeBufferPointer { src in
            weights.withUnsafeBufferPointer { wb in
                bias.withUnsafeBufferPointer { bb in
                    out.data.withUnsafeMutableBufferPointer { dst in
                        let s = src.baseAddress!, wp = wb.baseAddress!, bp = bb.baseAddress!, d = dst.baseAddress!
                        parallelRanges(n * oh, minPerThread: 2) { rows in
                            for row in rows {
                                let b = row / oh, oy = row % oh
                                switch vectors {
                                case 1: Self.row1(s, wp, bp, d, b: b, oy: oy, plan: self, ph: ph, pw: pw, oh: oh, ow: ow)
                                case 2: Self.row2(s, wp, bp, d, b: b, oy: oy, plan: self, ph: ph, pw: pw, oh: oh, ow: ow)
                                case 3, 4: Self.row4(s, wp, bp, d, b: b, oy: oy, plan: self, ph: ph, pw: pw, oh: oh, ow: ow)
                                default: Self.rowN(s, wp, bp, d, b: b, oy: oy, plan: self, ph: ph, pw: pw, oh: oh, ow: ow, lanes: lanes)
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    @inline(__always)
    private static func store(_ v: Vec8, _ d: UnsafeMutablePointer<Float>, count: Int) {
        if count == 8 { vstore(v, d) } else { for i in 0..<count { d[i] = v[i] } }
    }

    /// One output row, ≤ 8 output channels.
    private static func row1(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, b: Int, oy: Int, plan p: DirectConvPlan,
                             ph: Int, pw: Int, oh: Int, ow: Int) {
        let (cin, st, cout) = (p.cin, p.stride, p.cout)
        let bias = vload(bp)
        var ox = 0
        while ox < ow {
            let count = min(4, ow - ox)
            var a0 = bias, a1 = bias, a2 = bias, a3 = bias
            for ky in 0..<p.kh {
                let rowBase = s + ((b * ph + oy * st + ky) * pw) * cin
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
            let o = d + ((b * oh + oy) * ow + ox) * cout
            store(a0, o, count: cout)
            if count > 1 { store(a1, o + cout, count: cout) }
            if count > 2 { store(a2, o + 2 * cout, count: cout) }
            if count > 3 { store(a3, o + 3 * cout, count: cout) }
            ox += 4
        }
    }

    /// One output row, 9–16 output channels.
    private static func row2(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, b: Int, oy: Int, plan p: DirectConvPlan,
                             ph: Int, pw: Int, oh: Int, ow: Int) {
        let (cin, st, cout) = (p.cin, p.stride, p.cout)
        let (b0, b1) = (vload(bp), vload(bp + 8))
        var ox = 0
        while ox < ow {
            let count = min(4, ow - ox)
            var a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1, a30 = b0, a31 = b1
            for ky in 0..<p.kh {
                let rowBase = s + ((b * ph + oy * st + ky) * pw) * cin
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
            let o = d + ((b * oh + oy) * ow + ox) * cout
            let tail = cout - 8
            vstore(a00, o); store(a01, o + 8, count: tail)
            if count > 1 { vstore(a10, o + cout); store(a11, o + cout + 8, count: tail) }
            if count > 2 { vstore(a20, o + 2 * cout); store(a21, o + 2 * cout + 8, count: tail) }
            if count > 3 { vstore(a30, o + 3 * cout); store(a31, o + 3 * cout + 8, count: tail) }
            ox += 4
        }
    }

    /// One output row, 17–32 output channels: two pixels × four vectors per iteration
    /// (weights are padded to four vectors, so 17–24 channels waste one lane group).
    private static func row4(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, b: Int, oy: Int, plan p: DirectConvPlan,
                             ph: Int, pw: Int, oh: Int, ow: Int) {
        let (cin, st, cout, lanes) = (p.cin, p.stride, p.cout, p.vectors * 8)
        let b0 = vload(bp), b1 = vload(bp + 8), b2 = vload(bp + 16)
        let b3 = lanes > 24 ? vload(bp + 24) : Vec8(repeating: 0)
        var ox = 0
        while ox < ow {
            let pair = ox + 1 < ow
            var a0 = b0, a1 = b1, a2 = b2, a3 = b3
            var c0 = b0, c1 = b1, c2 = b2, c3 = b3
            for ky in 0..<p.kh {
                let rowBase = s + ((b * ph + oy * st + ky) * pw) * cin
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
            let o = d + ((b * oh + oy) * ow + ox) * cout
            store4(a0, a1, a2, a3, o, cout: cout)
            if pair { store4(c0, c1, c2, c3, o + cout, cout: cout) }
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

    /// One output row, any channel count (one pixel at a time; the general fallback).
    private static func rowN(_ s: UnsafePointer<Float>, _ wp: UnsafePointer<Float>, _ bp: UnsafePointer<Float>,
                             _ d: UnsafeMutablePointer<Float>, b: Int, oy: Int, plan p: DirectConvPlan,
                             ph: Int, pw: Int, oh: Int, ow: Int, lanes: Int) {
        let (cin, st, cout, v) = (p.cin, p.stride, p.cout, p.vectors)
        var acc = [Vec8](repeating: .zero, count: v)
        for ox in 0..<ow {
            for j in 0..<v { acc[j] = vload(bp + 8 * j) }
            for ky in 0..<p.kh {
                let rowBase = s + ((b * ph + oy * st + ky) * pw) * cin
                for kx in 0..<p.kw {
                    let wTap = wp + (ky * p.kw + kx) * cin * lanes
                    let i0 = rowBase + (ox * st + kx) * cin
                    for ci in 0..<cin {
                        let xv = Vec8(repeating: i0[ci])
                        for j in 0..<v { acc[j] = acc[j].addingProduct(xv, vload(wTap + ci * lanes + 8 * j)) }
                    }
                }
            }
            let o = d + ((b * oh + oy) * ow + ox) * cout
            for j in 0..<v { store(acc[j], o + 8 * j, count: min(8, cout - 8 * j)) }
        }
    }
}
