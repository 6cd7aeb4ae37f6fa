/// 3×3 stride-1 convolution as Winograd F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for
/// Convolutional Neural Networks", 2016) on NHWC tensors.
///
/// Each 2×2 block of outputs ("tile") is computed from the 4×4 input patch under it:
/// Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Summed over input channels, the element-wise product
/// becomes 16 independent GEMMs, [tiles × Cin] × [Cin × Cout], one per position in the
/// 4×4 transformed tile: 16 multiply-adds per 4 outputs instead of 36, so the GEMM work
/// is 4/9 of direct convolution. The transforms are additions only; they are memory-bound
/// and vectorised over channels. Weights are transformed once at load.
///
/// F(2×2, 3×3) rather than F(4×4, 3×3): its transforms have coefficients 0, ±½, ±1, so fp32
/// results stay within the im2col path's rounding (the parity tolerance is unchanged).
struct WinogradPlan: Sendable {
    let cin: Int
    let cout: Int
    let padTop: Int
    let padLeft: Int
    /// G g Gᵀ: 16 matrices [Cin, Cout], position-major.
    let transformed: [Float]
    let bias: [Float]?

    /// Worth it when the GEMMs are wide enough to run near sgemm peak: below this the
    /// transforms and the skinny GEMMs cost more than the saved multiply-adds.
    static let minChannels = 48
    /// Tiles per pass are bounded so the transformed input and the products (16 × tiles ×
    /// (Cin + Cout) floats) stay near the caches between the transforms and the GEMMs, but
    /// never below `minChunkTiles`, where the GEMMs get too short for sgemm.
    static let bufferFloats = 1 << 20
    static let minChunkTiles = 256

    static func applies(cin: Int, cout: Int, kh: Int, kw: Int, stride: Int) -> Bool {
        kh == 3 && kw == 3 && stride == 1 && cin >= minChannels && cout >= minChannels
    }

    /// - Parameter packedWeight: [Cout, 3, 3, Cin] (Conv2dKernel's packing).
    init(packedWeight: [Float], bias: [Float]?, cin: Int, cout: Int, padTop: Int, padLeft: Int) {
        self.cin = cin
        self.cout = cout
        self.padTop = padTop
        self.padLeft = padLeft
        self.bias = bias
        var u = [Float](repeating: 0, count: 16 * cin * cout)
        let plane = cin * cout
        for o in 0..<cout {
            for i in 0..<cin {
                var g = [[Float]](repeating: [0, 0, 0], count: 3)
                for y in 0..<3 { for x in 0..<3 { g[y][x] = packedWeight[((o * 3 + y) * 3 + x) * cin + i] } }
                // G g (4×3), G = [[1,0,0],[½,½,½],[½,−½,½],[0,0,1]]
                var gg = [[Float]](repeating: [0, 0, 0], count: 4)
                for x in 0..<3 {
                    gg[0][x] = g[0][x]
                    gg[1][x] = 0.5 * (g[0][x] + g[1][x] + g[2][x])
                    gg[2][x] = 0.5 * (g[0][x] - g[1][x] + g[2][x])
                    gg[3][x] = g[2][x]
                }
                // (G g) Gᵀ (4×4)
                for r in 0..<4 {
                    let row = [gg[r][0], 0.5 * (gg[r][0] + gg[r][1] + gg[r][2]),
                               0.5 * (gg[r][0] - gg[r][1] + gg[r][2]), gg[r][2]]
                    for c in 0..<4 { u[(r * 4 + c) * plane + i * cout + o] = row[c] }
                }
            }
        }
        transformed = u
    }

    func callAsFunction(_ x: Tensor, outHeight oh: Int, outWidth ow: Int) -> Tensor {
        let (n, h, w) = (x.n, x.h, x.w)
        let tilesH = (oh + 1) / 2, tilesW = (ow + 1) / 2
        let tilesPerImage = tilesH * tilesW
        let total = n * tilesPerImage
        let chunk = min(total, max(Self.minChunkTiles, Self.bufferFloats / (16 * (cin + cout))))
        var out = Tensor(uninitialized: [n, oh, ow, cout])
        var v = [Float](unsafeUninitializedCapacity: 16 * chunk * cin) { _, c in c = 16 * chunk * cin }
        var m = [Float](unsafeUninitializedCapacity: 16 * chunk * cout) { _, c in c = 16 * chunk * cout }
        x.data.withUnsafeBufferPointer { src in
            transformed.withUnsafeBufferPointer { u in
                out.data.withUnsafeMutableBufferPointer { dst in
                    v.withUnsafeMutableBufferPointer { vb in
                        m.withUnsafeMutableBufferPointer { mb in
                            var first = 0
                            while first < total {
                                let count = min(chunk, total - first)
                                let geometry = TileGeometry(h: h, w: w, oh: oh, ow: ow, tilesW: tilesW,
                                                            tilesPerImage: tilesPerImage,
                                                            padTop: padTop, padLeft: padLeft)
                                transformInput(src.baseAddress!, geometry, first: first, count: count,
                                               into: vb.baseAddress!)
                                OpProfile.section(.winogradGemm) {
                                for k in 0..<16 {
                                    BLAS.sgemm(m: count, n: cout, k: cin,
                                               a: vb.baseAddress! + k * count * cin, lda: cin,
                                               b: u.baseAddress! + k * cin * cout, ldb: cout,
                                               c: mb.baseAddress! + k * count * cout, ldc: cout)
                                }
                                }
                                transformOutput(mb.baseAddress!, geometry, first: first, count: count,
                                                into: dst.baseAddress!)
                                first += count
                            }
                        }
                    }
                }
            }
        }
        // The GEMMs did 4/9 of these; effective GFLOP/s counts direct convolution's FLOPs.
        FlopCounter.add(2 * n * oh * ow * cout * cin * 9 - 2 * total * 16 * cin * cout)
        return out
    }

    struct TileGeometry {
        let h, w, oh, ow, tilesW, tilesPerImage, padTop, padLeft: Int
    }

    /// V[k][t][:] = (Bᵀ d B)[k] for the 4×4 input patch d of tile `first + t`.
    private func transformInput(_ src: UnsafePointer<Float>, _ g: TileGeometry, first: Int, count: Int,
                                into v: UnsafeMutablePointer<Float>) {
        let cin = self.cin
        let stride = count * cin  // between positions k
        parallelRanges(count, minPerThread: 16) { range in
          withUnsafeTemporaryAllocation(of: Int.self, capacity: 16) { offsets in
            for t in range {
                let tile = first + t
                let b = tile / g.tilesPerImage
                let rem = tile - b * g.tilesPerImage
                let ty = rem / g.tilesW, tx = rem - (rem / g.tilesW) * g.tilesW
                let y0 = 2 * ty - g.padTop, x0 = 2 * tx - g.padLeft
                for r in 0..<4 {
                    let iy = y0 + r
                    for c in 0..<4 {
                        let ix = x0 + c
                        offsets[r * 4 + c] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                            ? ((b * g.h + iy) * g.w + ix) * cin : -1
                    }
                }
                let dst = v + t * cin
                let off = UnsafePointer(offsets.baseAddress!)
                var ch = 0
                while ch + 8 <= cin {
                    transformInputVec(src, off, ch, dst, stride)
                    ch += 8
                }
                while ch < cin {
                    transformInputScalar(src, off, ch, dst, stride)
                    ch += 1
                }
            }
          }
        }
    }

    @inline(__always)
    private func transformInputVec(_ src: UnsafePointer<Float>, _ off: UnsafePointer<Int>, _ ch: Int,
                                   _ dst: UnsafeMutablePointer<Float>, _ stride: Int) {
        @inline(__always) func d(_ i: Int) -> Vec8 { off[i] >= 0 ? vload(src + off[i] + ch) : .zero }
        // t = Bᵀ d: rows combined
        var t = (Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero,
                 Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero, Vec8.zero)
        for c in 0..<4 {
            let d0 = d(c), d1 = d(4 + c), d2 = d(8 + c), d3 = d(12 + c)
            let r0 = d0 - d2, r1 = d1 + d2, r2 = d2 - d1, r3 = d1 - d3
            switch c {
            case 0: t.0 = r0; t.4 = r1; t.8 = r2; t.12 = r3
            case 1: t.1 = r0; t.5 = r1; t.9 = r2; t.13 = r3
            case 2: t.2 = r0; t.6 = r1; t.10 = r2; t.14 = r3
            default: t.3 = r0; t.7 = r1; t.11 = r2; t.15 = r3
            }
        }
        // V = t B: columns combined
        @inline(__always) func store(_ row: Int, _ a: Vec8, _ b: Vec8, _ c: Vec8, _ e: Vec8) {
            let base = dst + ch + row * 4 * stride
            vstore(a - c, base)
            vstore(b + c, base + stride)
            vstore(c - b, base + 2 * stride)
            vstore(b - e, base + 3 * stride)
        }
        store(0, t.0, t.1, t.2, t.3)
        store(1, t.4, t.5, t.6, t.7)
        store(2, t.8, t.9, t.10, t.11)
        store(3, t.12, t.13, t.14, t.15)
    }

    private func transformInputScalar(_ src: UnsafePointer<Float>, _ off: UnsafePointer<Int>, _ ch: Int,
                                      _ dst: UnsafeMutablePointer<Float>, _ stride: Int) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { buf in
        let d = buf.baseAddress!, t = buf.baseAddress! + 16
        for i in 0..<16 { d[i] = off[i] >= 0 ? src[off[i] + ch] : 0 }
        for c in 0..<4 {
            t[c] = d[c] - d[8 + c]
            t[4 + c] = d[4 + c] + d[8 + c]
            t[8 + c] = d[8 + c] - d[4 + c]
            t[12 + c] = d[4 + c] - d[12 + c]
        }
        for r in 0..<4 {
            let base = dst + ch + r * 4 * stride
            base[0] = t[r * 4] - t[r * 4 + 2]
            base[stride] = t[r * 4 + 1] + t[r * 4 + 2]
            base[2 * stride] = t[r * 4 + 2] - t[r * 4 + 1]
            base[3 * stride] = t[r * 4 + 1] - t[r * 4 + 3]
        }
        }
    }

    /// Y = Aᵀ M A (+ bias) for each tile, written to the (clipped) 2×2 output block.
    private func transformOutput(_ m: UnsafePointer<Float>, _ g: TileGeometry, first: Int, count: Int,
                                 into dst: UnsafeMutablePointer<Float>) {
        let cout = self.cout
        let stride = count * cout
        let zeros = [Float](repeating: 0, count: cout)
        (bias ?? zeros).withUnsafeBufferPointer { biasBuf in
            let bp = biasBuf.baseAddress!
            parallelRanges(count, minPerThread: 16) { range in
                for t in range {
                    let tile = first + t
                    let b = tile / g.tilesPerImage
                    let rem = tile - b * g.tilesPerImage
                    let ty = rem / g.tilesW, tx = rem - (rem / g.tilesW) * g.tilesW
                    let oy = 2 * ty, ox = 2 * tx
                    let right = ox + 1 < g.ow, below = oy + 1 < g.oh
                    let o00 = dst + ((b * g.oh + oy) * g.ow + ox) * cout
                    let o01 = o00 + cout
                    let o10 = o00 + g.ow * cout
                    let o11 = o10 + cout
                    let src = m + t * cout
                    var ch = 0
                    while ch + 8 <= cout {
                        @inline(__always) func e(_ k: Int) -> Vec8 { vload(src + k * stride + ch) }
                        // s = Aᵀ M: rows 0+1+2 and 1−2−3
                        let s00 = e(0) + e(4) + e(8), s01 = e(1) + e(5) + e(9)
                        let s02 = e(2) + e(6) + e(10), s03 = e(3) + e(7) + e(11)
                        let s10 = e(4) - e(8) - e(12), s11 = e(5) - e(9) - e(13)
                        let s12 = e(6) - e(10) - e(14), s13 = e(7) - e(11) - e(15)
                        let bv = vload(bp + ch)
                        vstore(s00 + s01 + s02 + bv, o00 + ch)
                        if right { vstore(s01 - s02 - s03 + bv, o01 + ch) }
                        if below {
                            vstore(s10 + s11 + s12 + bv, o10 + ch)
                            if right { vstore(s11 - s12 - s13 + bv, o11 + ch) }
                        }
                        ch += 8
                    }
                    while ch < cout {
                        @inline(__always) func e(_ k: Int) -> Float { src[k * stride + ch] }
                        let s00 = e(0) + e(4) + e(8), s01 = e(1) + e(5) + e(9)
                        let s02 = e(2) + e(6) + e(10), s03 = e(3) + e(7) + e(11)
                        let s10 = e(4) - e(8) - e(12), s11 = e(5) - e(9) - e(13)
                        let s12 = e(6) - e(10) - e(14), s13 = e(7) - e(11) - e(15)
                        let bv = bp[ch]
                        o00[ch] = s00 + s01 + s02 + bv
                        if right { o01[ch] = s01 - s02 - s03 + bv }
                        if below {
                            o10[ch] = s10 + s11 + s12 + bv
                            if right { o11[ch] = s11 - s12 - s13 + bv }
                        }
                        ch += 1
                    }
                }
            }
        }
    }
}
