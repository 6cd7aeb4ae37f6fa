import Foundation

/// One level of Farnebäck's iteration. With A = (A₀ + A₁(x + d))/2 and
/// Δb = −(b₁(x + d) − b₀)/2 + A·d (the expansion of the second image read at the current
/// displacement d), each pixel contributes the normal equations AᵀA·d = AᵀΔb; these
/// are averaged over a window (box or Gaussian) and solved for the new d.
///
/// Mirrors OpenCV 4.6's FarnebackUpdateMatrices and FarnebackUpdateFlow_Blur /
/// _GaussianBlur. OpenCV interleaves the matrix update with the solve in stripes that
/// the window has moved past; the values are those of a solve over the whole plane
/// followed by an update over the whole plane, which is what these do, split by rows
/// over the cores.
///
/// Planes: R₀, R₁ and M are [height, width, 5], the flow [height, width, 2].
enum FarnebackSolver {
    /// Attenuation of the five rows and columns nearest each edge, where the expansion
    /// saw replicated pixels.
    private static let edgeWeights: (Float, Float, Float, Float, Float) = (0.14, 0.14, 0.4472, 0.4472, 0.4472)

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

    /// M = (G₁₁, G₁₂, G₂₂, h₁, h₂) per pixel from R₀, R₁ and the flow, for all rows.
    static func updateMatrices(r0: UnsafePointer<Float>, r1: UnsafePointer<Float>, flow: UnsafePointer<Float>,
                               into m: UnsafeMutablePointer<Float>, width w: Int, height h: Int) {
        parallelRanges(h, minPerThread: 4) { rows in
            for y in rows { updateMatricesRow(y, r0: r0, r1: r1, flow: flow, into: m, width: w, height: h) }
        }
    }

    @inline(__always)
    private static func updateMatricesRow(_ y: Int, r0 r0Plane: UnsafePointer<Float>, r1: UnsafePointer<Float>,
                                          flow flowPlane: UnsafePointer<Float>, into mPlane: UnsafeMutablePointer<Float>,
                                          width w: Int, height h: Int) {
        let border = 5
        let stride1 = w * 5
        let flow = flowPlane + y * w * 2
        let r0 = r0Plane + y * w * 5
        let m = mPlane + y * w * 5
        let fy0 = Float(y)
        let yEdge = y < border || y >= h - border
        for x in 0..<w {
            let (dx, dy) = (flow[2 * x], flow[2 * x + 1])
            var fx = Float(x) + dx, fy = fy0 + dy
            let x1 = Int(fx.rounded(.down)), y1 = Int(fy.rounded(.down))
            var (r2, r3, r4, r5, r6): (Float, Float, Float, Float, Float)
            fx -= Float(x1)
            fy -= Float(y1)
            if x1 >= 0 && x1 < w - 1 && y1 >= 0 && y1 < h - 1 {
                // R₁ bilinearly at the displaced position, the quadratic parts averaged.
                let a00 = (1 - fx) * (1 - fy), a01 = fx * (1 - fy)
                let a10 = (1 - fx) * fy, a11 = fx * fy
                let p = r1 + y1 * stride1 + x1 * 5
                @inline(__always) func sample(_ c: Int) -> Float {
                    a00 * p[c] + a01 * p[5 + c] + a10 * p[stride1 + c] + a11 * p[stride1 + 5 + c]
                }
                r2 = sample(0)
                r3 = sample(1)
                r4 = sample(2)
                r5 = sample(3)
                r6 = sample(4)
                r4 = (r0[x * 5 + 2] + r4) * 0.5
                r5 = (r0[x * 5 + 3] + r5) * 0.5
                r6 = (r0[x * 5 + 4] + r6) * 0.25
            } else {
                // Displaced outside the frame: no second-image term, A from the first image.
                (r2, r3) = (0, 0)
                r4 = r0[x * 5 + 2]
                r5 = r0[x * 5 + 3]
                r6 = r0[x * 5 + 4] * 0.5
            }
            r2 = (r0[x * 5] - r2) * 0.5
            r3 = (r0[x * 5 + 1] - r3) * 0.5
            r2 += r4 * dy + r6 * dx
            r3 += r6 * dy + r5 * dx
            if yEdge || x < border || x >= w - border {
                let scale = (x < border ? edgeWeight(x) : 1) * (x >= w - border ? edgeWeight(w - x - 1) : 1)
                    * (y < border ? edgeWeight(y) : 1) * (y >= h - border ? edgeWeight(h - y - 1) : 1)
                r2 *= scale; r3 *= scale; r4 *= scale
                r5 *= scale; r6 *= scale
            }
            m[x * 5] = r4 * r4 + r6 * r6
            m[x * 5 + 1] = (r4 + r5) * r6
            m[x * 5 + 2] = r5 * r5 + r6 * r6
            m[x * 5 + 3] = r4 * r2 + r6 * r3
            m[x * 5 + 4] = r6 * r2 + r5 * r3
        }
    }

    /// The flow from M averaged over a box of side `blockSize` (replicated borders):
    /// FarnebackUpdateFlow_Blur. Column sums run down the plane in double; a range of rows
    /// replays them from the top (adds only) so every row sees the sums a single pass has.
    static func solveBox(_ mPlane: UnsafePointer<Float>, flow: UnsafeMutablePointer<Float>,
                         width w: Int, height h: Int, blockSize: Int) {
        let m = blockSize / 2
        let scale = 1 / Double(blockSize * blockSize)
        let n = w * 5
        let lead = (m + 1) * 5
        // Doubles, as floats: the pool holds floats.
        parallelLanes(h, scratch: 2 * (n + 2 * lead)) { rows, scratch in
            scratch.withMemoryRebound(to: Double.self, capacity: n + 2 * lead) { buffer in
                let vsum = buffer + lead
                @inline(__always) func row(_ y: Int) -> UnsafePointer<Float> { mPlane + min(max(y, 0), h - 1) * n }
                let top = row(0)
                for i in 0..<n { vsum[i] = Double(top[i] * Float(m + 2)) }
                for y in stride(from: 1, to: m, by: 1) {
                    let r = row(y)
                    for i in 0..<n { vsum[i] += Double(r[i]) }
                }
                @inline(__always) func advance(to y: Int) {
                    let (leaving, entering) = (row(y - m - 1), row(y + m))
                    for i in 0..<n { vsum[i] += Double(entering[i] - leaving[i]) }
                }
                for y in 0..<rows.lowerBound { advance(to: y) }
                for y in rows {
                    advance(to: y)
                    for i in 0..<lead {
                        vsum[-1 - i] = vsum[4 - i]
                        vsum[n + i] = vsum[n + i - 5]
                    }
                    var g11 = vsum[0] * Double(m + 2), g12 = vsum[1] * Double(m + 2), g22 = vsum[2] * Double(m + 2)
                    var h1 = vsum[3] * Double(m + 2), h2 = vsum[4] * Double(m + 2)
                    for x in stride(from: 1, to: m, by: 1) {
                        g11 += vsum[x * 5]; g12 += vsum[x * 5 + 1]; g22 += vsum[x * 5 + 2]
                        h1 += vsum[x * 5 + 3]; h2 += vsum[x * 5 + 4]
                    }
                    let f = flow + y * w * 2
                    for x in 0..<w {
                        let (add, drop) = ((x + m) * 5, (x - m) * 5 - 5)
                        g11 += vsum[add] - vsum[drop]
                        g12 += vsum[add + 1] - vsum[drop + 1]
                        g22 += vsum[add + 2] - vsum[drop + 2]
                        h1 += vsum[add + 3] - vsum[drop + 3]
                        h2 += vsum[add + 4] - vsum[drop + 4]
                        solve(g11 * scale, g12 * scale, g22 * scale, h1 * scale, h2 * scale, into: f + 2 * x)
                    }
                }
            }
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
    static func solveGaussian(_ mPlane: UnsafePointer<Float>, flow: UnsafeMutablePointer<Float>,
                              width w: Int, height h: Int, window: [Float]) {
        let m = window.count - 1
        let n = w * 5
        let lead = m * 5
        window.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress!
            parallelLanes(h, scratch: n + 2 * lead + n) { rows, scratch in
                let vsum = scratch + lead
                let hsum = scratch + n + 2 * lead
                for y in rows {
                    let centre = mPlane + y * n
                    for i in 0..<n { vsum[i] = centre[i] * k[0] }
                    for t in stride(from: 1, through: m, by: 1) {
                        let below = mPlane + min(y + t, h - 1) * n, above = mPlane + max(y - t, 0) * n
                        let kt = k[t]
                        for i in 0..<n { vsum[i] = vsum[i] + (below[i] + above[i]) * kt }
                    }
                    for i in 0..<lead {
                        vsum[-1 - i] = vsum[4 - i]
                        vsum[n + i] = vsum[n + i - 5]
                    }
                    for i in 0..<n { hsum[i] = vsum[i] * k[0] }
                    for t in stride(from: 1, through: m, by: 1) {
                        let kt = k[t]
                        for i in 0..<n { hsum[i] = hsum[i] + kt * (vsum[i - t * 5] + vsum[i + t * 5]) }
                    }
                    let f = flow + y * w * 2
                    for x in 0..<w {
                        let s = hsum + x * 5
                        solve(Double(s[0]), Double(s[1]), Double(s[2]), Double(s[3]), Double(s[4]), into: f + 2 * x)
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
