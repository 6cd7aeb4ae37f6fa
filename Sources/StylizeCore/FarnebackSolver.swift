import Foundation

/// One level of Farnebäck's iteration. With A = (A₀ + A₁(x + d))/2 and
/// Δb = −(b₁(x + d) − b₀)/2 + A·d (the expansion of the second image read at the current
/// displacement d), each pixel contributes the normal equations AᵀA·d = AᵀΔb; these
/// are averaged over a window (box or Gaussian) and solved for the new d.
///
/// Mirrors OpenCV 4.6's FarnebackUpdateMatrices and FarnebackUpdateFlow_Blur /
/// _GaussianBlur: each pixel's values come from the same float and double operations in
/// the same order. OpenCV interleaves the matrix update with the solve in stripes that
/// the window has moved past; the values are those of a solve over the whole plane
/// followed by an update over the whole plane, which is what these do, split by rows
/// over the cores.
///
/// Layouts: R₀ (`own`) and M are five planes (plane c at c·stride), so that eight pixels
/// of one coefficient load at once; R₁ (`moved`) is interleaved [height, width, 5], so
/// that the four neighbours of a displaced position load as four vectors, and needs 3
/// floats of padding after its last pixel. The flow is [height, width, 2].
enum FarnebackSolver {
    /// Attenuation of the five rows and columns nearest each edge, where the expansion
    /// saw replicated pixels.
    private static let edgeWeights: (Float, Float, Float, Float, Float) = (0.14, 0.14, 0.4472, 0.4472, 0.4472)
    private static let border = 5

    @inline(__always)
    private static func edgeWeight(_ i: Int) -> Float {
        switch i {
        case 0: return edgeWeights.0
        case 1: return edgeWeights.1
        case 2: return edgeWeights.2
        case 3: return edgeWeights.3
        default: return edgeWeights.4
        }
    }

    /// The column factors of the edge attenuation, as OpenCV's product starts:
    /// left · right (each 1 away from its edge).
    @inline(__always)
    private static func columnWeight(_ x: Int, _ w: Int) -> Float {
        (x < border ? edgeWeight(x) : 1) * (x >= w - border ? edgeWeight(w - x - 1) : 1)
    }

    @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    /// M = (G₁₁, G₁₂, G₂₂, h₁, h₂) per pixel from R₀, R₁ and the flow, for all rows.
    static func updateMatrices(own: UnsafePointer<Float>, ownStride: Int, moved: UnsafePointer<Float>,
                               flow: UnsafePointer<Float>, into m: UnsafeMutablePointer<Float>, stride: Int,
                               width w: Int, height h: Int) {
        rowRanges(h, width: w) { rows in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 40) { sampled in
                for y in rows {
                    updateMatricesRow(y, own: own, ownStride: ownStride, moved: moved, flow: flow, into: m, stride: stride,
                                      width: w, height: h, sampled: sampled.baseAddress!)
                }
            }
        }
    }

    /// One row, eight pixels at a time: positions, weights and the arithmetic in
    /// vectors, one lane per pixel; the bilinear read of R₁ per pixel, five coefficients
    /// in one vector, transposed through `sampled` (5 × 8 floats).
    @inline(__always)
    private static func updateMatricesRow(_ y: Int, own: UnsafePointer<Float>, ownStride os: Int, moved r1: UnsafePointer<Float>,
                                          flow flowPlane: UnsafePointer<Float>, into mPlanes: UnsafeMutablePointer<Float>,
                                          stride ms: Int, width w: Int, height h: Int, sampled: UnsafeMutablePointer<Float>) {
        typealias F = SIMD8<Float>
        let stride1 = w * 5
        let flow = flowPlane + y * w * 2
        let r0 = own + y * w
        let m = mPlanes + y * w
        let fy0 = Float(y)
        let yEdge = y < border || y >= h - border
        let rowWeights = ((y < border ? edgeWeight(y) : 1), (y >= h - border ? edgeWeight(h - y - 1) : 1))
        let lanes = F(0, 1, 2, 3, 4, 5, 6, 7)
        var x0 = 0
        while x0 + 8 <= w {
            let f = UnsafeRawPointer(flow + 2 * x0).loadUnaligned(as: SIMD16<Float>.self)
            let (dx, dy) = (f.evenHalf, f.oddHalf)
            var fx = (lanes + Float(x0)) + dx, fy = fy0 + dy
            let x1 = fx.rounded(.down), y1 = fy.rounded(.down)
            let inside = (x1 .>= 0) .& (x1 .< Float(w - 1)) .& (y1 .>= 0) .& (y1 .< Float(h - 1))
            fx -= x1
            fy -= y1
            let a00 = (1 - fx) * (1 - fy), a01 = fx * (1 - fy)
            let a10 = (1 - fx) * fy, a11 = fx * fy
            for l in 0..<8 {
                var v = F(repeating: 0)
                if inside[l] {
                    // Each lane of v: the scalar code's ((a00·p + a01·p′) + a10·q) + a11·q′.
                    let p = r1 + Int(y1[l]) * stride1 + Int(x1[l]) * 5
                    v = a00[l] * load8(p) + a01[l] * load8(p + 5) + a10[l] * load8(p + stride1) + a11[l] * load8(p + stride1 + 5)
                }
                (sampled[l], sampled[8 + l], sampled[16 + l], sampled[24 + l], sampled[32 + l]) = (v[0], v[1], v[2], v[3], v[4])
            }
            let (own0, own1, own2, own3, own4) = (load8(r0 + x0), load8(r0 + os + x0), load8(r0 + 2 * os + x0),
                                                  load8(r0 + 3 * os + x0), load8(r0 + 4 * os + x0))
            // Displaced outside the frame: no second-image term (its samples are 0 here),
            // and A from the first image alone.
            var r2 = (own0 - load8(sampled)) * 0.5
            var r3 = (own1 - load8(sampled + 8)) * 0.5
            var r4 = ((own2 + load8(sampled + 16)) * 0.5).replacing(with: own2, where: .!inside)
            var r5 = ((own3 + load8(sampled + 24)) * 0.5).replacing(with: own3, where: .!inside)
            var r6 = ((own4 + load8(sampled + 32)) * 0.25).replacing(with: own4 * 0.5, where: .!inside)
            r2 += r4 * dy + r6 * dx
            r3 += r6 * dy + r5 * dx
            if yEdge || x0 < border || x0 + 8 > w - border {
                var columns = F(repeating: 1)
                for l in 0..<8 { columns[l] = columnWeight(x0 + l, w) }
                let scale = columns * rowWeights.0 * rowWeights.1
                r2 *= scale; r3 *= scale; r4 *= scale
                r5 *= scale; r6 *= scale
            }
            store8(r4 * r4 + r6 * r6, m + x0)
            store8((r4 + r5) * r6, m + ms + x0)
            store8(r5 * r5 + r6 * r6, m + 2 * ms + x0)
            store8(r4 * r2 + r6 * r3, m + 3 * ms + x0)
            store8(r6 * r2 + r5 * r3, m + 4 * ms + x0)
            x0 += 8
        }
        for x in x0..<w {
            let (dx, dy) = (flow[2 * x], flow[2 * x + 1])
            var fx = Float(x) + dx, fy = fy0 + dy
            let x1 = Int(fx.rounded(.down)), y1 = Int(fy.rounded(.down))
            var (r2, r3, r4, r5, r6): (Float, Float, Float, Float, Float)
            fx -= Float(x1)
            fy -= Float(y1)
            let o = (r0[x], r0[os + x], r0[2 * os + x], r0[3 * os + x], r0[4 * os + x])
            if x1 >= 0 && x1 < w - 1 && y1 >= 0 && y1 < h - 1 {
                let a00 = (1 - fx) * (1 - fy), a01 = fx * (1 - fy)
                let a10 = (1 - fx) * fy, a11 = fx * fy
                let p = r1 + y1 * stride1 + x1 * 5
                let v = a00 * load8(p) + a01 * load8(p + 5) + a10 * load8(p + stride1) + a11 * load8(p + stride1 + 5)
                r2 = (o.0 - v[0]) * 0.5
                r3 = (o.1 - v[1]) * 0.5
                r4 = (o.2 + v[2]) * 0.5
                r5 = (o.3 + v[3]) * 0.5
                r6 = (o.4 + v[4]) * 0.25
            } else {
                (r2, r3) = ((o.0 - 0) * 0.5, (o.1 - 0) * 0.5)
                (r4, r5, r6) = (o.2, o.3, o.4 * 0.5)
            }
            r2 += r4 * dy + r6 * dx
            r3 += r6 * dy + r5 * dx
            if yEdge || x < border || x >= w - border {
                let scale = columnWeight(x, w) * rowWeights.0 * rowWeights.1
                r2 *= scale; r3 *= scale; r4 *= scale
                r5 *= scale; r6 *= scale
            }
            m[x] = r4 * r4 + r6 * r6
            m[ms + x] = (r4 + r5) * r6
            m[2 * ms + x] = r5 * r5 + r6 * r6
            m[3 * ms + x] = r4 * r2 + r6 * r3
            m[4 * ms + x] = r6 * r2 + r5 * r3
        }
    }

    /// The flow from M averaged over a box of side `blockSize` (replicated borders):
    /// FarnebackUpdateFlow_Blur. Column sums run down the plane in double; a band of rows
    /// replays them from the top (adds only) so every row sees the sums a single pass has.
    static func solveBox(_ mPlanes: UnsafePointer<Float>, stride ms: Int, flow: UnsafeMutablePointer<Float>,
                         width w: Int, height h: Int, blockSize: Int) {
        let m = blockSize / 2
        let scale = 1 / Double(blockSize * blockSize)
        let lead = m + 1
        let span = w + 2 * lead
        // Five rows of column sums and five of window sums, in doubles, as floats (the
        // pool holds floats).
        rowBands(h, width: w, scratch: 2 * (5 * span + 5 * w)) { rows, scratch in
            scratch.withMemoryRebound(to: Double.self, capacity: 5 * span + 5 * w) { buffer in
                @inline(__always) func vsum(_ c: Int) -> UnsafeMutablePointer<Double> { buffer + c * span + lead }
                @inline(__always) func row(_ c: Int, _ y: Int) -> UnsafePointer<Float> { mPlanes + c * ms + min(max(y, 0), h - 1) * w }
                let sums = buffer + 5 * span
                for c in 0..<5 {
                    let (v, top) = (vsum(c), row(c, 0))
                    for x in 0..<w { v[x] = Double(top[x] * Float(m + 2)) }
                    for y in stride(from: 1, to: m, by: 1) {
                        let r = row(c, y)
                        for x in 0..<w { v[x] += Double(r[x]) }
                    }
                }
                @inline(__always) func advance(to y: Int) {
                    for c in 0..<5 {
                        let (v, leaving, entering) = (vsum(c), row(c, y - m - 1), row(c, y + m))
                        for x in 0..<w { v[x] += Double(entering[x] - leaving[x]) }
                    }
                }
                for y in 0..<rows.lowerBound { advance(to: y) }
                let (v0, v1, v2, v3, v4) = (vsum(0), vsum(1), vsum(2), vsum(3), vsum(4))
                for y in rows {
                    advance(to: y)
                    for c in 0..<5 {
                        let v = vsum(c)
                        for i in 0..<lead {
                            v[-1 - i] = v[0]
                            v[w + i] = v[w - 1]
                        }
                    }
                    // The window sums run along the row (a sequential sum per coefficient)…
                    var g11 = v0[0] * Double(m + 2), g12 = v1[0] * Double(m + 2), g22 = v2[0] * Double(m + 2)
                    var h1 = v3[0] * Double(m + 2), h2 = v4[0] * Double(m + 2)
                    for x in stride(from: 1, to: m, by: 1) {
                        g11 += v0[x]; g12 += v1[x]; g22 += v2[x]
                        h1 += v3[x]; h2 += v4[x]
                    }
                    for x in 0..<w {
                        let (add, drop) = (x + m, x - m - 1)
                        g11 += v0[add] - v0[drop]
                        g12 += v1[add] - v1[drop]
                        g22 += v2[add] - v2[drop]
                        h1 += v3[add] - v3[drop]
                        h2 += v4[add] - v4[drop]
                        (sums[x], sums[w + x], sums[2 * w + x], sums[3 * w + x], sums[4 * w + x])
                            = (g11 * scale, g12 * scale, g22 * scale, h1 * scale, h2 * scale)
                    }
                    // …then each pixel's 2×2 system, four at a time.
                    solveRow(sums, width: w, into: flow + y * w * 2)
                }
            }
        }
    }

    /// `solve` for a row whose five averaged coefficients are rows of `sums`
    /// (G₁₁, G₁₂, G₂₂, h₁, h₂, each `width` doubles), four pixels per vector.
    @inline(__always)
    private static func solveRow(_ sums: UnsafePointer<Double>, width w: Int, into f: UnsafeMutablePointer<Float>) {
        typealias D = SIMD4<Double>
        @inline(__always) func load(_ p: UnsafePointer<Double>) -> D { UnsafeRawPointer(p).loadUnaligned(as: D.self) }
        var x = 0
        while x + 4 <= w {
            let (g11, g12, g22) = (load(sums + x), load(sums + w + x), load(sums + 2 * w + x))
            let (h1, h2) = (load(sums + 3 * w + x), load(sums + 4 * w + x))
            let idet = 1 / (g11 * g22 - g12 * g12 + 1e-3)
            let dx = SIMD4<Float>((g11 * h2 - g12 * h1) * idet)
            let dy = SIMD4<Float>((g22 * h1 - g12 * h2) * idet)
            let out = f + 2 * x
            (out[0], out[1], out[2], out[3]) = (dx[0], dy[0], dx[1], dy[1])
            (out[4], out[5], out[6], out[7]) = (dx[2], dy[2], dx[3], dy[3])
            x += 4
        }
        for x in x..<w {
            solve(sums[x], sums[w + x], sums[2 * w + x], sums[3 * w + x], sums[4 * w + x], into: f + 2 * x)
        }
    }

    /// The window of OPTFLOW_FARNEBACK_GAUSSIAN: σ = 0.3·⌊blockSize/2⌋, taps 0…⌊blockSize/2⌋
    /// normalised over the full symmetric window, in float.
    static func gaussianWindow(blockSize: Int) -> [Float] {
        let m = blockSize / 2
        let sigma = Double(m) * 0.3
        var kernel = [Float](repeating: 1, count: m + 1)
        var s = 1.0
        for i in stride(from: 1, through: m, by: 1) {
            let t = Float(Foundation.exp(Double(-i * i) / (2 * sigma * sigma)))
            kernel[i] = t
            s += Double(t * 2)
        }
        s = 1 / s
        for i in 0...m { kernel[i] = Float(Double(kernel[i]) * s) }
        return kernel
    }

    /// The flow from M averaged with `window` (half taps, centre first), replicated
    /// borders, float sums: FarnebackUpdateFlow_GaussianBlur.
    static func solveGaussian(_ mPlanes: UnsafePointer<Float>, stride ms: Int, flow: UnsafeMutablePointer<Float>,
                              width w: Int, height h: Int, window: [Float]) {
        let m = window.count - 1
        let span = w + 2 * m
        window.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress!
            // Per band: five rows of vertical sums (with m replicated pixels either side)
            // and five of horizontal ones.
            rowBands(h, width: w, scratch: 5 * span + 5 * w) { rows, scratch in
                for y in rows {
                    for c in 0..<5 {
                        let v = scratch + c * span + m
                        let plane = mPlanes + c * ms
                        let centre = plane + y * w
                        for x in 0..<w { v[x] = centre[x] * k[0] }
                        for t in stride(from: 1, through: m, by: 1) {
                            let below = plane + min(y + t, h - 1) * w, above = plane + max(y - t, 0) * w
                            let kt = k[t]
                            for x in 0..<w { v[x] = v[x] + (below[x] + above[x]) * kt }
                        }
                        for i in 0..<m {
                            v[-1 - i] = v[0]
                            v[w + i] = v[w - 1]
                        }
                        let s = scratch + 5 * span + c * w
                        for x in 0..<w { s[x] = v[x] * k[0] }
                        for t in stride(from: 1, through: m, by: 1) {
                            let kt = k[t]
                            for x in 0..<w { s[x] = s[x] + kt * (v[x - t] + v[x + t]) }
                        }
                    }
                    let s = scratch + 5 * span
                    let f = flow + y * w * 2
                    for x in 0..<w {
                        solve(Double(s[x]), Double(s[w + x]), Double(s[2 * w + x]), Double(s[3 * w + x]), Double(s[4 * w + x]),
                              into: f + 2 * x)
                    }
                }
            }
        }
    }

    /// d = G⁻¹h for the symmetric 2×2 G, its determinant padded by 10⁻³ so flat regions
    /// get small vectors rather than a division by zero.
    @inline(__always)
    private static func solve(_ g11: Double, _ g12: Double, _ g22: Double, _ h1: Double, _ h2: Double,
                              into f: UnsafeMutablePointer<Float>) {
        let idet = 1 / (g11 * g22 - g12 * g12 + 1e-3)
        f[0] = Float((g11 * h2 - g12 * h1) * idet)
        f[1] = Float((g22 * h1 - g12 * h2) * idet)
    }
}
