/// 3×3 stride-1 convolution by Winograd's minimal filtering (Lavin & Gray, "Fast Algorithms
/// for Convolutional Neural Networks", 2016) on NHWC tensors.
///
/// Each m×m block of outputs ("tile") is computed from the α×α input patch under it
/// (α = m + 2): Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Summed over input channels, the
/// element-wise product becomes α² independent GEMMs, [tiles × Cin] × [Cin × Cout], one per
/// position in the transformed tile. Multiply-adds per output: α²/m² instead of 9, so
/// F(2×2, 3×3) does 4/9 and F(4×4, 3×3) 1/4 of direct convolution's GEMM work.
/// The transforms are a few additions per value, memory-bound and vectorised over channels.
/// Weights are transformed once at load.
///
/// F(2×2, 3×3)'s coefficients are 0, ±½, ±1, so it rounds like im2col. F(4×4, 3×3) (points
/// 0, ±1, ±2) loses about one more decimal digit in fp32 (measured in KernelTests), and its
/// transformed weights take 4× the layer's weights, so it is used for layers up to
/// `WinogradPlan.largeTileMaxWeights`: autoencoders and the widest-resolution U-Net levels.
struct WinogradPlan: Sendable {
    enum Tile: Sendable {
        case f2x3, f4x3
        var m: Int { self == .f2x3 ? 2 : 4 }
        var alpha: Int { m + 2 }
        /// G (α × 3), in Double so the transformed weights round once.
        var g: [[Double]] {
            switch self {
            case .f2x3: return [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
            case .f4x3:
                return [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                        [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
            }
        }
    }

    let tile: Tile
    let cin: Int
    let cout: Int
    let padTop: Int
    let padLeft: Int
    /// G g Gᵀ: α² matrices [Cin, Cout], position-major.
    let transformed: [Float]
    let bias: [Float]

    /// Worth it when the GEMMs are wide enough to run near sgemm peak: below this the
    /// transforms and the skinny GEMMs cost more than the saved multiply-adds. Channel
    /// counts must be whole vectors (every real checkpoint's are).
    static let minChannels = 48
    /// F(4×4, 3×3) only for layers with at most this many weights (Cin·Cout·9 ≈ 320·320·9):
    /// its transformed weights are 4× the layer's.
    static let largeTileMaxWeights = 320 * 320 * 9
    /// Tiles per pass are bounded so the transformed input and the products (α² × tiles ×
    /// (Cin + Cout) floats) stay near the caches between the transforms and the GEMMs, but
    /// never below `minChunkTiles`, where the GEMMs get too short for sgemm.
    static let bufferFloats = 1 << 20
    static let minChunkTiles = 256
    /// The same for a pass that one thread runs alone: its buffers sized for that core's
    /// L2 (1 MB here). Measured on TAESD at 2 threads: 256 tiles / 4 MB 0.343 s encode,
    /// 64 / 1 MB 0.290-0.296 s, 48 / 0.75 MB and 32 / 0.5 MB no better.
    static let laneBufferFloats = 1 << 18
    static let minLaneChunkTiles = 64

    static func applies(cin: Int, cout: Int, kh: Int, kw: Int, stride: Int) -> Bool {
        kh == 3 && kw == 3 && stride == 1 && cin >= minChannels && cout >= minChannels
            && cin % 8 == 0 && cout % 8 == 0
    }

    /// - Parameter packedWeight: [Cout, 3, 3, Cin] (Conv2dKernel's packing).
    init(tile: Tile, packedWeight: [Float], bias: [Float]?, cin: Int, cout: Int, padTop: Int, padLeft: Int) {
        self.tile = tile
        self.cin = cin
        self.cout = cout
        self.padTop = padTop
        self.padLeft = padLeft
        self.bias = bias ?? [Float](repeating: 0, count: cout)
        let a = tile.alpha, gm = tile.g
        var u = [Float](repeating: 0, count: a * a * cin * cout)
        let plane = cin * cout
        var gg = [Double](repeating: 0, count: a * 3)
        for o in 0..<cout {
            for i in 0..<cin {
                func w(_ y: Int, _ x: Int) -> Double { Double(packedWeight[((o * 3 + y) * 3 + x) * cin + i]) }
                for r in 0..<a { for x in 0..<3 { gg[r * 3 + x] = (0..<3).reduce(0) { $0 + gm[r][$1] * w($1, x) } } }
                for r in 0..<a {
                    for c in 0..<a {
                        let v = (0..<3).reduce(0) { $0 + gg[r * 3 + $1] * gm[c][$1] }
                        u[(r * a + c) * plane + i * cout + o] = Float(v)
                    }
                }
            }
        }
        transformed = u
    }

    /// Output tiles of this plan for an output of oh × ow, per image.
    func tiles(outHeight oh: Int, outWidth ow: Int) -> Int {
        ((oh + tile.m - 1) / tile.m) * ((ow + tile.m - 1) / tile.m)
    }

    func callAsFunction(_ x: Tensor, outHeight oh: Int, outWidth ow: Int) -> Tensor {
        let (n, h, w) = (x.n, x.h, x.w)
        let m = tile.m, a2 = tile.alpha * tile.alpha
        let tilesW = (ow + m - 1) / m
        let tilesPerImage = tiles(outHeight: oh, outWidth: ow)
        let total = n * tilesPerImage
        var chunk = min(total, max(Self.minChunkTiles, Self.bufferFloats / (a2 * (cin + cout))))
        let threads = ThreadBudget.available
        // Narrow layers, whose products sgemm would not split, run whole passes per thread
        // (transform in, α² GEMMs, transform out), so a pass's buffers stay in that core's
        // cache and the threads meet once per layer instead of three times per pass. Wide
        // layers keep both threads on each product, sharing its weights in cache.
        let perThread = threads > 1 && BLAS.splitParts(m: chunk, n: cout, k: cin) <= 1
            && total >= threads * Self.minLaneChunkTiles
        if perThread {  // a whole number of passes per thread
            chunk = min(total, max(Self.minLaneChunkTiles, Self.laneBufferFloats / (a2 * (cin + cout))))
            let passes = (total + threads * chunk - 1) / (threads * chunk) * threads
            chunk = (total + passes - 1) / passes
        }
        let passes = (total + chunk - 1) / chunk
        var out = Tensor(uninitialized: [n, oh, ow, cout])
        let geometry = TileGeometry(h: h, w: w, oh: oh, ow: ow, tilesW: tilesW, tilesPerImage: tilesPerImage,
                                    padTop: padTop, padLeft: padLeft)
        x.data.withUnsafeBufferPointer { src in
            transformed.withUnsafeBufferPointer { u in
                out.data.withUnsafeMutableBufferPointer { dst in
                    let cin = self.cin, cout = self.cout
                    /// Runs the passes in `range` on transform buffers of its own: `scratch`
                    /// holds the input transforms, then the products.
                    let scratchFloats = a2 * chunk * (cin + cout)
                    func run(_ range: Range<Int>, _ scratch: UnsafeMutablePointer<Float>) {
                                let vp = scratch, mp = scratch + a2 * chunk * cin
                                for pass in range {
                                    let first = pass * chunk, count = min(chunk, total - first)
                                    transformInput(src.baseAddress!, geometry, first: first, count: count, into: vp)
                                    func product(_ k: Int) {
                                        BLAS.sgemm(m: count, n: cout, k: cin,
                                                   a: vp + k * cin, lda: a2 * cin,
                                                   b: u.baseAddress! + k * cin * cout, ldb: cout,
                                                   c: mp + k * cout, ldc: a2 * cout)
                                    }
                                    func products() {
                                        if BLAS.splitParts(m: count, n: cout, k: cin) > 1 {
                                            for k in 0..<a2 { product(k) }  // sgemm splits each one
                                        } else {
                                            parallelLanes(a2) { for k in $0 { product(k) } }
                                        }
                                    }
                                    // OpProfile is kept by the driving thread only, not by per-thread passes.
                                    if perThread { products() } else { OpProfile.section(.winogradGemm, products) }
                                    transformOutput(mp, geometry, first: first, count: count, into: dst.baseAddress!)
                                }
                    }
                    if perThread {
                        OpProfile.section(.winogradPasses) { parallelLanes(passes, scratch: scratchFloats, run) }
                    } else {
                        var scratch = TensorBuffer(uninitializedCount: scratchFloats)
                        scratch.withUnsafeMutableBufferPointer { run(0..<passes, $0.baseAddress!) }
                    }
                }
            }
        }
        // The GEMMs counted their own FLOPs; effective GFLOP/s counts direct convolution's.
        FlopCounter.add(2 * n * oh * ow * cout * cin * 9 - 2 * total * a2 * cin * cout)
        return out
    }

    struct TileGeometry {
        let h, w, oh, ow, tilesW, tilesPerImage, padTop, padLeft: Int

        /// (image, tile row, tile column) of tile `index` in the batch.
        @inline(__always)
        func position(_ index: Int) -> (b: Int, ty: Int, tx: Int) {
            let b = index / tilesPerImage
            let rem = index - b * tilesPerImage
            return (b, rem / tilesW, rem % tilesW)
        }
    }

    // MARK: - 1-D transforms on α vectors p[0], p[s], …, in place

    /// Bᵀ for F(2, 3).
    @inline(__always)
    private static func inputTransform4(_ p: UnsafeMutablePointer<Vec8>, _ s: Int) {
        let d0 = p[0], d1 = p[s], d2 = p[2 * s], d3 = p[3 * s]
        p[0] = d0 - d2
        p[s] = d1 + d2
        p[2 * s] = d2 - d1
        p[3 * s] = d1 - d3
    }

    /// Bᵀ for F(4, 3).
    @inline(__always)
    private static func inputTransform6(_ p: UnsafeMutablePointer<Vec8>, _ s: Int) {
        let d0 = p[0], d1 = p[s], d2 = p[2 * s], d3 = p[3 * s], d4 = p[4 * s], d5 = p[5 * s]
        let four = Vec8(repeating: 4), five = Vec8(repeating: 5), two = Vec8(repeating: 2)
        p[0] = four * d0 - five * d2 + d4
        p[s] = d3 + d4 - four * (d1 + d2)
        p[2 * s] = four * (d1 - d2) + d4 - d3
        p[3 * s] = two * (d3 - d1) + d4 - d2
        p[4 * s] = two * (d1 - d3) + d4 - d2
        p[5 * s] = four * d1 - five * d3 + d5
    }

    /// Aᵀ for F(2, 3): 4 → 2.
    @inline(__always)
    private static func outputTransform4(_ p: UnsafeMutablePointer<Vec8>, _ s: Int) {
        let m0 = p[0], m1 = p[s], m2 = p[2 * s], m3 = p[3 * s]
        p[0] = m0 + m1 + m2
        p[s] = m1 - m2 - m3
    }

    /// Aᵀ for F(4, 3): 6 → 4.
    @inline(__always)
    private static func outputTransform6(_ p: UnsafeMutablePointer<Vec8>, _ s: Int) {
        let m0 = p[0], m1 = p[s], m2 = p[2 * s], m3 = p[3 * s], m4 = p[4 * s], m5 = p[5 * s]
        let sum12 = m1 + m2, diff12 = m1 - m2, sum34 = m3 + m4, diff34 = m3 - m4
        p[0] = m0 + sum12 + sum34
        p[s] = diff12 + Vec8(repeating: 2) * diff34
        p[2 * s] = sum12 + Vec8(repeating: 4) * sum34
        p[3 * s] = diff12 + Vec8(repeating: 8) * diff34 + m5
    }

    // MARK: - Input and output transforms over a pass of tiles

    /// V[t][k][:] = (Bᵀ d B)[k] for the α×α input patch d of tile `first + t`. Tile-major,
    /// so each tile's α² vectors are written contiguously; GEMM k reads every α²-th row.
    private func transformInput(_ src: UnsafePointer<Float>, _ g: TileGeometry, first: Int, count: Int,
                                into v: UnsafeMutablePointer<Float>) {
        let cin = self.cin, m = tile.m, a = tile.alpha, large = tile == .f4x3
        let stride = cin  // between positions k
        parallelRanges(count, minPerThread: 16) { range in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 36) { offsets in
            withUnsafeTemporaryAllocation(of: Vec8.self, capacity: 36) { buf in
                let off = offsets.baseAddress!, t = buf.baseAddress!
                for local in range {
                    let (b, ty, tx) = g.position(first + local)
                    let y0 = m * ty - g.padTop, x0 = m * tx - g.padLeft
                    for r in 0..<a {
                        let iy = y0 + r
                        for c in 0..<a {
                            let ix = x0 + c
                            off[r * a + c] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w)
                                ? ((b * g.h + iy) * g.w + ix) * cin : -1
                        }
                    }
                    let dst = v + local * a * a * cin
                    var ch = 0
                    while ch < cin {
                        for k in 0..<(a * a) { t[k] = off[k] >= 0 ? vload(src + off[k] + ch) : .zero }
                        if large {
                            for c in 0..<6 { Self.inputTransform6(t + c, 6) }
                            for r in 0..<6 { Self.inputTransform6(t + 6 * r, 1) }
                        } else {
                            for c in 0..<4 { Self.inputTransform4(t + c, 4) }
                            for r in 0..<4 { Self.inputTransform4(t + 4 * r, 1) }
                        }
                        for k in 0..<(a * a) { vstore(t[k], dst + k * stride + ch) }
                        ch += 8
                    }
                }
            }
            }
        }
    }

    /// Y = Aᵀ M A + bias for each tile, written to the (clipped) m×m output block.
    private func transformOutput(_ prod: UnsafePointer<Float>, _ g: TileGeometry, first: Int, count: Int,
                                 into dst: UnsafeMutablePointer<Float>) {
        let cout = self.cout, m = tile.m, a = tile.alpha, large = tile == .f4x3
        let stride = cout  // between positions k; tiles are α²·Cout apart
        bias.withUnsafeBufferPointer { biasBuf in
            let bp = biasBuf.baseAddress!
            parallelRanges(count, minPerThread: 16) { range in
                withUnsafeTemporaryAllocation(of: Vec8.self, capacity: 36) { buf in
                    let t = buf.baseAddress!
                    for local in range {
                        let (b, ty, tx) = g.position(first + local)
                        let oy = m * ty, ox = m * tx
                        let rows = min(m, g.oh - oy), cols = min(m, g.ow - ox)
                        let base = dst + ((b * g.oh + oy) * g.ow + ox) * cout
                        let src = prod + local * a * a * cout
                        var ch = 0
                        while ch < cout {
                            for k in 0..<(a * a) { t[k] = vload(src + k * stride + ch) }
                            // columns first (α rows → m rows), then each of the m rows (α → m)
                            if large {
                                for c in 0..<6 { Self.outputTransform6(t + c, 6) }
                                for r in 0..<4 { Self.outputTransform6(t + 6 * r, 1) }
                            } else {
                                for c in 0..<4 { Self.outputTransform4(t + c, 4) }
                                for r in 0..<2 { Self.outputTransform4(t + 4 * r, 1) }
                            }
                            let bv = vload(bp + ch)
                            for r in 0..<rows {
                                for c in 0..<cols {
                                    vstore(t[r * a + c] + bv, base + (r * g.ow + c) * cout + ch)
                                }
                            }
                            ch += 8
                        }
                    }
                }
            }
        }
    }
}
