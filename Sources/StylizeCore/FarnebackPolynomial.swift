import Foundation

/// Farnebäck's polynomial expansion: each pixel's neighbourhood, weighted by a Gaussian
/// applicability of radius n, fitted by f(x, y) ≈ r1 + r2·x + r3·y + r4·x² + r5·y² + r6·xy
/// (x along rows, y down columns). The fit is a fixed linear filter: separable 1-D
/// correlations with g, x·g and x²·g, then the normal-equation inverse G⁻¹, whose only
/// entries the coefficients need are four numbers.
///
/// Mirrors OpenCV 4.6's FarnebackPrepareGaussian / FarnebackPolyExp: float taps, the
/// vertical pass in float, the horizontal pass accumulated in double, borders replicated,
/// and the output order (r3, r2, r5, r4, r6) per pixel: the y and x terms first (the
/// linear part b), then y², x² and xy (the quadratic part A). r1 is not needed and not stored.
struct PolynomialBasis: Sendable {
    let radius: Int
    /// g, x·g and x²·g for x = 0…radius (the taps are even, odd and even in x).
    let g: [Float]
    let xg: [Float]
    let xxg: [Float]
    /// (G⁻¹)₁₁, (G⁻¹)₀₃, (G⁻¹)₃₃ and (G⁻¹)₅₅ in OpenCV's numbering of the six basis
    /// functions (1, x, y, x², y², xy).
    let ig11: Double
    let ig03: Double
    let ig33: Double
    let ig55: Double

    init(radius n: Int, sigma: Double) {
        precondition(n >= 1, "PolynomialBasis: radius must be at least 1")
        let sigma = sigma < Double(Float.ulpOfOne) ? Double(n) * 0.3 : sigma
        // Unnormalised taps rounded to float first, then the sum taken of those floats:
        // the order that fixes every tap's last bit.
        var raw = [Float](repeating: 0, count: 2 * n + 1)
        var s = 0.0
        for x in -n...n {
            raw[x + n] = Float(Foundation.exp(Double(-x * x) / (2 * sigma * sigma)))
            s += Double(raw[x + n])
        }
        s = 1 / s
        var full = [Float](repeating: 0, count: 2 * n + 1)
        for i in 0..<(2 * n + 1) { full[i] = Float(Double(raw[i]) * s) }
        g = (0...n).map { full[$0 + n] }
        xg = (0...n).map { Float($0) * full[$0 + n] }
        xxg = (0...n).map { Float($0 * $0) * full[$0 + n] }

        // The Gram matrix of the weighted basis. By symmetry only four sums differ; each
        // product is formed in float (as the taps are) and accumulated in double.
        var (g00, g11, g33, g55) = (0.0, 0.0, 0.0, 0.0)
        for y in -n...n {
            for x in -n...n {
                let w = full[y + n] * full[x + n]
                let (fx, fy) = (Float(x), Float(y))
                g00 += Double(w)
                g11 += Double(w * fx * fx)
                g33 += Double(w * fx * fx * fx * fx)
                g55 += Double(w * fx * fx * fy * fy)
            }
        }
        var gram = [Double](repeating: 0, count: 36)
        gram[0] = g00
        for i in [7, 14, 3, 4, 18, 24] { gram[i] = g11 }  // (1,1) (2,2) (0,3) (0,4) (3,0) (4,0)
        gram[21] = g33; gram[28] = g33                    // (3,3) (4,4)
        gram[22] = g55; gram[27] = g55; gram[35] = g55    // (3,4) (4,3) (5,5)
        let inverse = PolynomialBasis.choleskyInverse(gram, size: 6)
        ig11 = inverse[7]
        ig03 = inverse[3]
        ig33 = inverse[21]
        ig55 = inverse[35]
        radius = n
    }

    /// The inverse of a symmetric positive definite matrix by Cholesky factorisation and
    /// two triangular solves per column, as OpenCV's DECOMP_CHOLESKY inversion does it
    /// (reciprocal square roots kept on the diagonal).
    static func choleskyInverse(_ a: [Double], size m: Int) -> [Double] {
        var l = a
        for i in 0..<m {
            for j in 0..<i {
                var s = l[i * m + j]
                for k in 0..<j { s -= l[i * m + k] * l[j * m + k] }
                l[i * m + j] = s * l[j * m + j]
            }
            var s = l[i * m + i]
            for k in 0..<i { s -= l[i * m + k] * l[i * m + k] }
            l[i * m + i] = 1 / s.squareRoot()
        }
        var inverse = [Double](repeating: 0, count: m * m)
        var b = [Double](repeating: 0, count: m)
        for column in 0..<m {
            for i in 0..<m { b[i] = i == column ? 1 : 0 }
            for i in 0..<m {
                var s = b[i]
                for k in 0..<i { s -= l[i * m + k] * b[k] }
                b[i] = s * l[i * m + i]
            }
            for i in stride(from: m - 1, through: 0, by: -1) {
                var s = b[i]
                for k in stride(from: m - 1, to: i, by: -1) { s -= l[k * m + i] * b[k] }
                b[i] = s * l[i * m + i]
            }
            for i in 0..<m { inverse[i * m + column] = b[i] }
        }
        return inverse
    }

    /// Floats of scratch one row needs: three planes (the g, x·g and x²·g correlations of
    /// the column) of width + 2·radius, the borders replicated, and `width` doubles.
    func scratchPerRow(width: Int) -> Int { 3 * (width + 2 * radius) + 2 * width + 8 }

    /// Expands a one-channel plane. The coefficients are written twice: as five planes
    /// (`planes`, plane c at c·planeStride, each row-major [height, width]) for reading
    /// many pixels of one coefficient, and interleaved ([height, width, 5] at `pixels`)
    /// for reading all coefficients of one pixel.
    func expand(_ src: UnsafePointer<Float>, width w: Int, height h: Int,
                planes: UnsafeMutablePointer<Float>, planeStride: Int, pixels: UnsafeMutablePointer<Float>) {
        let n = radius
        let stride = w + 2 * n
        g.withUnsafeBufferPointer { gb in
            xg.withUnsafeBufferPointer { xgb in
                xxg.withUnsafeBufferPointer { xxgb in
                    let (g, xg, xxg) = (gb.baseAddress!, xgb.baseAddress!, xxgb.baseAddress!)
                    rowBands(h, width: w, scratch: scratchPerRow(width: w)) { rows, scratch in
                        // The three correlations, each with n replicated pixels either side.
                        let c0 = scratch + n, c1 = scratch + stride + n, c2 = scratch + 2 * stride + n
                        for y in rows {
                            // Eight columns at a time, all n row pairs in registers.
                            var x = 0
                            while x + 8 <= w {
                                typealias F = SIMD8<Float>
                                @inline(__always) func load(_ p: UnsafePointer<Float>) -> F { UnsafeRawPointer(p).loadUnaligned(as: F.self) }
                                var (s0, s1, s2) = (load(src + y * w + x) * g[0], F(repeating: 0), F(repeating: 0))
                                for k in 1...n {
                                    let above = load(src + max(y - k, 0) * w + x), below = load(src + min(y + k, h - 1) * w + x)
                                    let p = above + below
                                    s0 = s0 + g[k] * p
                                    s1 = s1 + xg[k] * (below - above)
                                    s2 = s2 + xxg[k] * p
                                }
                                UnsafeMutableRawPointer(c0 + x).storeBytes(of: s0, as: F.self)
                                UnsafeMutableRawPointer(c1 + x).storeBytes(of: s1, as: F.self)
                                UnsafeMutableRawPointer(c2 + x).storeBytes(of: s2, as: F.self)
                                x += 8
                            }
                            for x in x..<w {
                                var (s0, s1, s2) = (src[y * w + x] * g[0], Float(0), Float(0))
                                for k in 1...n {
                                    let above = src[max(y - k, 0) * w + x], below = src[min(y + k, h - 1) * w + x]
                                    let p = above + below
                                    s0 = s0 + g[k] * p
                                    s1 = s1 + xg[k] * (below - above)
                                    s2 = s2 + xxg[k] * p
                                }
                                (c0[x], c1[x], c2[x]) = (s0, s1, s2)
                            }
                            for k in 1...n {
                                (c0[-k], c1[-k], c2[-k]) = (c0[0], c1[0], c2[0])
                                (c0[w - 1 + k], c1[w - 1 + k], c2[w - 1 + k]) = (c0[w - 1], c1[w - 1], c2[w - 1])
                            }
                            // Doubles 8-byte aligned: the scratch block is 64-byte aligned and
                            // 3·stride floats may be odd.
                            (scratch + 3 * stride + (3 * stride) % 2).withMemoryRebound(to: Double.self, capacity: w) { doubles in
                                expandRow(c0, c1, c2, width: w, g: g, xg: xg, xxg: xxg, stash: doubles,
                                          planes: planes + y * w, planeStride: planeStride, pixels: pixels + y * w * 5)
                            }
                        }
                    }
                }
            }
        }
    }

    /// The horizontal correlations of one row, accumulated in double, and the
    /// coefficients from them, four pixels at a time, each lane doing one pixel's
    /// operations in the scalar order. Two passes of three accumulators each (all six
    /// at once spill): the first over the g-correlation (b1, b2, b4; b1 kept in
    /// `stash`, n doubles as 2n floats), the second over the other two (b3, b5, b6).
    /// Then the planes' row is interleaved into `pixels`.
    @inline(__always)
    private func expandRow(_ c0: UnsafeMutablePointer<Float>, _ c1: UnsafeMutablePointer<Float>,
                           _ c2: UnsafeMutablePointer<Float>, width w: Int,
                           g: UnsafePointer<Float>, xg: UnsafePointer<Float>, xxg: UnsafePointer<Float>,
                           stash: UnsafeMutablePointer<Double>,
                           planes: UnsafeMutablePointer<Float>, planeStride ps: Int, pixels d: UnsafeMutablePointer<Float>) {
        typealias F = SIMD4<Float>
        typealias D = SIMD4<Double>
        let n = radius
        let (ig11, ig03, ig33, ig55) = (self.ig11, self.ig03, self.ig33, self.ig55)
        @inline(__always) func load(_ p: UnsafeMutablePointer<Float>) -> F { UnsafeRawPointer(p).loadUnaligned(as: F.self) }
        @inline(__always) func store(_ v: D, _ p: UnsafeMutablePointer<Float>) {
            UnsafeMutableRawPointer(p).storeBytes(of: F(v), as: F.self)
        }
        let vectorEnd = w / 4 * 4
        var x = 0
        while x < vectorEnd {
            var b1 = D(load(c0 + x) * g[0]), b2 = D(repeating: 0), b4 = D(repeating: 0)
            for k in 1...n {
                let (right, left) = (load(c0 + x + k), load(c0 + x - k))
                let tg = D(right + left)
                b1 += tg * Double(g[k])
                b4 += tg * Double(xxg[k])
                b2 += D((right - left) * xg[k])
            }
            UnsafeMutableRawPointer(stash + x).storeBytes(of: b1, as: D.self)
            store(b2 * ig11, planes + ps + x)
            store(b1 * ig03 + b4 * ig33, planes + 3 * ps + x)
            x += 4
        }
        x = 0
        while x < vectorEnd {
            var b3 = D(load(c1 + x) * g[0]), b5 = D(load(c2 + x) * g[0]), b6 = D(repeating: 0)
            for k in 1...n {
                let (right, left) = (load(c1 + x + k), load(c1 + x - k))
                b3 += D((right + left) * g[k])
                b6 += D((right - left) * xg[k])
                b5 += D((load(c2 + x + k) + load(c2 + x - k)) * g[k])
            }
            let b1 = UnsafeRawPointer(stash + x).loadUnaligned(as: D.self)
            store(b3 * ig11, planes + x)
            store(b1 * ig03 + b5 * ig33, planes + 2 * ps + x)
            store(b6 * ig55, planes + 4 * ps + x)
            x += 4
        }
        for x in vectorEnd..<w {
            var b1 = Double(c0[x] * g[0]), b2 = 0.0, b3 = Double(c1[x] * g[0])
            var b4 = 0.0, b5 = Double(c2[x] * g[0]), b6 = 0.0
            for k in 1...n {
                let (right0, left0) = (c0[x + k], c0[x - k])
                let tg = Double(right0 + left0)
                b1 += tg * Double(g[k])
                b4 += tg * Double(xxg[k])
                b2 += Double((right0 - left0) * xg[k])
                b3 += Double((c1[x + k] + c1[x - k]) * g[k])
                b6 += Double((c1[x + k] - c1[x - k]) * xg[k])
                b5 += Double((c2[x + k] + c2[x - k]) * g[k])
            }
            (planes[x], planes[ps + x], planes[2 * ps + x], planes[3 * ps + x], planes[4 * ps + x])
                = (Float(b3 * ig11), Float(b2 * ig11), Float(b1 * ig03 + b5 * ig33), Float(b1 * ig03 + b4 * ig33), Float(b6 * ig55))
        }
        for x in 0..<w {
            (d[x * 5], d[x * 5 + 1], d[x * 5 + 2], d[x * 5 + 3], d[x * 5 + 4])
                = (planes[x], planes[ps + x], planes[2 * ps + x], planes[3 * ps + x], planes[4 * ps + x])
        }
    }
}
