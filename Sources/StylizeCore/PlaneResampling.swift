import Foundation

/// Blur and resize of float planes the way OpenCV 4.6's CPU code computes them for CV_32F
/// Mats: same kernels, same float32 arithmetic in the same order, same border rules. The
/// optical flow is ported from OpenCV and must match it to rounding, and its pyramid is
/// built from these; a "nearly the same" resize moves flow vectors by more than that.
///
/// A plane is `height` rows of `width` pixels of `channels` interleaved floats, rows
/// packed (OpenCV's continuous CV_32FCn Mat).
enum PlaneResampling {
    /// cvRound: to nearest, ties to even (what SSE2's cvtsd2si does under the default
    /// rounding mode; it decides kernel and level sizes, so 2.5 must give 2).
    @inline(__always)
    static func cvRound(_ x: Double) -> Int { Int(x.rounded(.toNearestOrEven)) }

    /// getGaussianKernel(n, sigma, CV_32F): the fixed binomial kernels for sigma ≤ 0 and
    /// n ≤ 7, else exp(−x²/2σ²) normalised in double, then rounded to float.
    static func gaussianKernel(size n: Int, sigma: Double) -> [Float] {
        precondition(n > 0 && n % 2 == 1, "gaussianKernel: odd size expected, got \(n)")
        if sigma <= 0 {
            switch n {
            case 1: return [1]
            case 3: return [0.25, 0.5, 0.25]
            case 5: return [0.0625, 0.25, 0.375, 0.25, 0.0625]
            case 7: return [0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]
            default: break
            }
        }
        let sigmaX = sigma > 0 ? sigma : Double(n) * 0.15 + 0.35
        // x runs over 2·(i − (n−1)/2), so the exponent carries a quarter: −x²/8σ².
        let scale2X = -0.125 / (sigmaX * sigmaX)
        let half = (n - 1) / 2
        var values = [Double](repeating: 1, count: half + 1)
        var sum = 0.0
        for i in 0..<half {
            let x = 1 - n + 2 * i
            values[i] = Foundation.exp(Double(x * x) * scale2X)
            sum += values[i]
        }
        sum = sum * 2 + 1
        var kernel = [Float](repeating: 0, count: n)
        for i in 0...half {
            kernel[i] = Float(values[i] / sum)
            kernel[n - 1 - i] = kernel[i]
        }
        return kernel
    }

    /// BORDER_REFLECT_101 index (…, 2, 1 | 0, 1, 2, … | n−2, n−3, …), for |overhang| < n.
    @inline(__always)
    static func reflect101(_ i: Int, _ n: Int) -> Int {
        if n == 1 { return 0 }
        var j = i
        while j < 0 || j >= n { j = j < 0 ? -j : 2 * (n - 1) - j }
        return j
    }

    /// GaussianBlur(src, dst, (k, k), σ, σ) of a one-channel plane with OpenCV's default
    /// border (reflect 101), as its AVX2 build computes it: a row pass, then a column pass
    /// that adds the mirrored pairs of rows outwards with fused multiply-adds. Rows of
    /// up to five taps add the centre and the mirrored pairs; longer ones run left to right,
    /// one fused multiply-add per tap. Only the rows `rows` of the result are computed
    /// (the others are left as they are): a coarse pyramid level reads few of them, and
    /// each value computed is the one a full blur gives. `rowScratch` holds
    /// `height × width` floats.
    static func gaussianBlur(_ src: UnsafePointer<Float>, width w: Int, height h: Int, kernel: [Float],
                             into dst: UnsafeMutablePointer<Float>, rowScratch: UnsafeMutablePointer<Float>,
                             rows: PlaneSamples) {
        typealias F = SIMD8<Float>
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> F { UnsafeRawPointer(p).loadUnaligned(as: F.self) }
        @inline(__always) func store(_ v: F, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: F.self) }
        let r = kernel.count / 2
        kernel.withUnsafeBufferPointer { kb in
            let k = kb.baseAddress! + r
            /// One output of the row pass; `at` reads the row (reflecting at its ends).
            @inline(__always) func rowTap(_ x: Int, _ at: (Int) -> Float) -> Float {
                if r <= 2 {
                    var acc = r == 0 ? at(x) * k[0] : (at(x - 1) + at(x + 1)) * k[1]
                    if r > 0 { acc = acc.addingProduct(at(x), k[0]) }
                    if r == 2 { acc = acc.addingProduct(at(x - 2) + at(x + 2), k[2]) }
                    return acc
                }
                var acc = at(x - r) * k[-r]
                for i in stride(from: -r + 1, through: r, by: 1) { acc = acc.addingProduct(at(x + i), k[i]) }
                return acc
            }
            rowRanges(h, width: w) { range in
                for y in range {
                    let s = src + y * w
                    let t = rowScratch + y * w
                    // Interior pixels eight at a time (each lane the scalar order), the r
                    // pixels at each end with reflection.
                    var x = r
                    while x + 8 + r <= w {
                        var acc: F
                        if r <= 2 {
                            acc = r == 0 ? load(s + x) * k[0] : (load(s + x - 1) + load(s + x + 1)) * k[1]
                            if r > 0 { acc = acc.addingProduct(load(s + x), k[0]) }
                            if r == 2 { acc = acc.addingProduct(load(s + x - 2) + load(s + x + 2), k[2]) }
                        } else {
                            acc = load(s + x - r) * k[-r]
                            for i in stride(from: -r + 1, through: r, by: 1) { acc = acc.addingProduct(load(s + x + i), k[i]) }
                        }
                        store(acc, t + x)
                        x += 8
                    }
                    for x in 0..<min(r, w) { t[x] = rowTap(x) { s[reflect101($0, w)] } }
                    for x in max(x, min(r, w))..<w { t[x] = rowTap(x) { s[reflect101($0, w)] } }
                }
            }
            rowRanges(rows.count, width: w) { range in
                for j in range {
                    let y = rows[j]
                    let centre = rowScratch + y * w
                    let d = dst + y * w
                    var x = 0
                    while x + 8 <= w {
                        var acc = load(centre + x) * k[0]
                        for i in stride(from: 1, through: r, by: 1) {
                            let up = rowScratch + reflect101(y - i, h) * w, down = rowScratch + reflect101(y + i, h) * w
                            acc = acc.addingProduct(load(up + x) + load(down + x), k[i])
                        }
                        store(acc, d + x)
                        x += 8
                    }
                    for x in x..<w {
                        var acc = centre[x] * k[0]
                        for i in stride(from: 1, through: r, by: 1) {
                            acc = acc.addingProduct(rowScratch[reflect101(y - i, h) * w + x] + rowScratch[reflect101(y + i, h) * w + x], k[i])
                        }
                        d[x] = acc
                    }
                }
            }
        }
    }

    /// Source positions of resize(INTER_LINEAR) along one axis: for output index d, the
    /// sample sits at (d + ½)·in/out − ½, clamped to the first and last source pixel
    /// (with weight 1 there). Stored in pooled floats as (index, 1 − frac, frac) triples.
    struct LinearTaps {
        let buffer: TensorBuffer

        init(source n: Int, destination m: Int) {
            var b = TensorBuffer(uninitializedCount: 3 * m)
            let scale = 1 / (Double(m) / Double(n))
            b.withUnsafeMutableBufferPointer { t in
                for d in 0..<m {
                    var f = Float((Double(d) + 0.5) * scale - 0.5)
                    var s = Int(f.rounded(.down))
                    f -= Float(s)
                    if s < 0 { (s, f) = (0, 0) }
                    if s >= n - 1 { (s, f) = (n - 1, 0) }
                    t[3 * d] = Float(s)
                    t[3 * d + 1] = 1 - f
                    t[3 * d + 2] = f
                }
            }
            buffer = b
        }
    }

    /// resize(src, dst, (dw, dh), INTER_LINEAR) of a float plane. An exact halving in both
    /// directions is done as OpenCV does it, as a 2×2 area mean (the same value in exact
    /// arithmetic, rounded differently); a same-size resize is a copy.
    static func resizeLinear(_ src: UnsafePointer<Float>, width sw: Int, height sh: Int, channels cn: Int,
                             into dst: UnsafeMutablePointer<Float>, width dw: Int, height dh: Int) {
        if sw == dw && sh == dh {
            dst.update(from: src, count: sw * sh * cn)
            return
        }
        if sw == 2 * dw && sh == 2 * dh {
            resizeAreaInteger(src, width: sw, height: sh, channels: cn, into: dst, width: dw, height: dh)
            return
        }
        let xs = LinearTaps(source: sw, destination: dw)
        let ys = LinearTaps(source: sh, destination: dh)
        // Horizontal then vertical, like resizeGeneric_: each destination row blends two
        // horizontally resampled source rows.
        xs.buffer.withUnsafeBufferPointer { xt in
            ys.buffer.withUnsafeBufferPointer { yt in
                rowRanges(dh, width: dw) { range in
                    for dy in range {
                        let sy0 = Int(yt[3 * dy])
                        let sy1 = min(sy0 + 1, sh - 1)
                        let (b0, b1) = (yt[3 * dy + 1], yt[3 * dy + 2])
                        let r0 = src + sy0 * sw * cn, r1 = src + sy1 * sw * cn
                        let d = dst + dy * dw * cn
                        if cn == 2 {
                            // Flow fields: both channels as one vector, the same products and sums.
                            let (v0, v1) = (SIMD2<Float>(repeating: b0), SIMD2<Float>(repeating: b1))
                            for dx in 0..<dw {
                                let sx = Int(xt[3 * dx]) * 2
                                let sx1 = min(Int(xt[3 * dx]) + 1, sw - 1) * 2
                                let (a0, a1) = (SIMD2<Float>(repeating: xt[3 * dx + 1]), SIMD2<Float>(repeating: xt[3 * dx + 2]))
                                let h0 = SIMD2(r0[sx], r0[sx + 1]) * a0 + SIMD2(r0[sx1], r0[sx1 + 1]) * a1
                                let h1 = SIMD2(r1[sx], r1[sx + 1]) * a0 + SIMD2(r1[sx1], r1[sx1 + 1]) * a1
                                let v = h0 * v0 + h1 * v1
                                (d[2 * dx], d[2 * dx + 1]) = (v.x, v.y)
                            }
                            continue
                        }
                        for dx in 0..<dw {
                            let sx = Int(xt[3 * dx]) * cn
                            let sx1 = min(Int(xt[3 * dx]) + 1, sw - 1) * cn
                            let (a0, a1) = (xt[3 * dx + 1], xt[3 * dx + 2])
                            for c in 0..<cn {
                                let h0 = r0[sx + c] * a0 + r0[sx1 + c] * a1
                                let h1 = r1[sx + c] * a0 + r1[sx1 + c] * a1
                                d[dx * cn + c] = h0 * b0 + h1 * b1
                            }
                        }
                    }
                }
            }
        }
    }

    /// resize(INTER_AREA) when the sizes divide exactly (resizeAreaFast_): the mean of
    /// each block. OpenCV's vector path for a 2×2 block of a one-channel plane adds the
    /// two row pairs first; its scalar path (other blocks and channel counts, and the
    /// last width % 4 pixels) adds the block in row order, four at a time.
    static func resizeAreaInteger(_ src: UnsafePointer<Float>, width sw: Int, height sh: Int, channels cn: Int,
                                  into dst: UnsafeMutablePointer<Float>, width dw: Int, height dh: Int) {
        let (fx, fy) = (sw / dw, sh / dh)
        let area = fx * fy
        let scale: Float = 1 / Float(area)
        let vectorPairs = fx == 2 && fy == 2 && cn == 1 ? dw / 4 * 4 : 0
        // The block's offsets in OpenCV's order (row by row), worked out once: the divisions
        // per tap cost more than the sums.
        withUnsafeTemporaryAllocation(of: Int.self, capacity: area) { offsets in
        for k in 0..<area { offsets[k] = (k / fx) * sw * cn + (k % fx) * cn }
        let ofs = UnsafePointer(offsets.baseAddress!)
        rowRanges(dh, width: dw) { range in
            for dy in range {
                let s = src + dy * fy * sw * cn
                let d = dst + dy * dw * cn
                var dx = 0
                while dx + 8 <= vectorPairs {
                    let a = UnsafeRawPointer(s + 2 * dx).loadUnaligned(as: SIMD16<Float>.self)
                    let b = UnsafeRawPointer(s + sw + 2 * dx).loadUnaligned(as: SIMD16<Float>.self)
                    let v = ((a.evenHalf + a.oddHalf) + (b.evenHalf + b.oddHalf)) * 0.25
                    UnsafeMutableRawPointer(d + dx).storeBytes(of: v, as: SIMD8<Float>.self)
                    dx += 8
                }
                for dx in dx..<vectorPairs {
                    let a = s + 2 * dx, b = s + sw + 2 * dx
                    d[dx] = ((a[0] + a[1]) + (b[0] + b[1])) * 0.25
                }
                for i in (vectorPairs * cn)..<(dw * cn) {
                    let (dx, c) = (i / cn, i % cn)
                    let base = s + dx * fx * cn + c
                    var sum: Float = 0
                    var k = 0
                    while k + 4 <= area {
                        sum += base[ofs[k]] + base[ofs[k + 1]] + base[ofs[k + 2]] + base[ofs[k + 3]]
                        k += 4
                    }
                    while k < area {
                        sum += base[ofs[k]]
                        k += 1
                    }
                    d[i] = sum * scale
                }
            }
        }
        }
    }

    /// resize(INTER_AREA) for shrinking (dw ≤ sw, dh ≤ sh; the initial flow is only ever
    /// shrunk): exact block means when the sizes divide, else resizeArea_'s weighted
    /// overlaps, one weight table per axis, rows accumulated in float.
    static func resizeArea(_ src: UnsafePointer<Float>, width sw: Int, height sh: Int, channels cn: Int,
                           into dst: UnsafeMutablePointer<Float>, width dw: Int, height dh: Int) {
        precondition(dw <= sw && dh <= sh, "resizeArea: only shrinking is supported")
        if sw == dw && sh == dh {
            dst.update(from: src, count: sw * sh * cn)
            return
        }
        let (scaleX, scaleY) = (1 / (Double(dw) / Double(sw)), 1 / (Double(dh) / Double(sh)))
        let (ix, iy) = (Int(scaleX.rounded()), Int(scaleY.rounded()))
        if abs(scaleX - Double(ix)) < Double.ulpOfOne && abs(scaleY - Double(iy)) < Double.ulpOfOne {
            resizeAreaInteger(src, width: sw, height: sh, channels: cn, into: dst, width: dw, height: dh)
            return
        }
        let xTab = AreaTaps(source: sw, destination: dw, scale: scaleX)
        let yTab = AreaTaps(source: sh, destination: dh, scale: scaleY)
        var rowSum = TensorBuffer(uninitializedCount: 2 * dw * cn)
        let n = dw * cn
        xTab.buffer.withUnsafeBufferPointer { xt in
            yTab.buffer.withUnsafeBufferPointer { yt in
                rowSum.withUnsafeMutableBufferPointer { rb in
                    let row = rb.baseAddress!, sum = rb.baseAddress! + n
                    for j in 0..<yTab.count {
                        let (dy, sy, beta) = (Int(yt[3 * j]), Int(yt[3 * j + 1]), yt[3 * j + 2])
                        row.update(repeating: 0, count: n)
                        let s = src + sy * sw * cn
                        for i in 0..<xTab.count {
                            let (dx, sx, alpha) = (Int(xt[3 * i]), Int(xt[3 * i + 1]), xt[3 * i + 2])
                            for c in 0..<cn { row[dx * cn + c] = row[dx * cn + c] + s[sx * cn + c] * alpha }
                        }
                        let first = j == 0 || Int(yt[3 * (j - 1)]) != dy
                        for i in 0..<n { sum[i] = first ? beta * row[i] : sum[i] + beta * row[i] }
                        if j + 1 == yTab.count || Int(yt[3 * (j + 1)]) != dy {
                            (dst + dy * n).update(from: sum, count: n)
                        }
                    }
                }
            }
        }
    }

    /// computeResizeAreaTab: each destination cell [d·scale, (d+1)·scale) as the source
    /// pixels it overlaps, weighted by overlap / cell width, partial ends below 1e-3 dropped.
    struct AreaTaps {
        // (destination, source, weight) triples in destination order, in pooled floats.
        let buffer: TensorBuffer
        let count: Int

        init(source n: Int, destination m: Int, scale: Double) {
            var b = TensorBuffer(uninitializedCount: 3 * 2 * n)
            var k = 0
            b.withUnsafeMutableBufferPointer { t in
                func add(_ d: Int, _ s: Int, _ a: Float) {
                    t[3 * k] = Float(d); t[3 * k + 1] = Float(s); t[3 * k + 2] = a
                    k += 1
                }
                for d in 0..<m {
                    let f1 = Double(d) * scale
                    let f2 = f1 + scale
                    let cell = min(scale, Double(n) - f1)
                    var s1 = Int(f1.rounded(.up))
                    var s2 = Int(f2.rounded(.down))
                    s2 = min(s2, n - 1)
                    s1 = min(s1, s2)
                    if Double(s1) - f1 > 1e-3 { add(d, s1 - 1, Float((Double(s1) - f1) / cell)) }
                    for s in s1..<max(s1, s2) { add(d, s, Float(1 / cell)) }
                    if f2 - Double(s2) > 1e-3 { add(d, s2, Float(min(min(f2 - Double(s2), 1), cell) / cell)) }
                }
            }
            buffer = b
            count = k
        }
    }
}

/// The rows of a plane that a linear resize reads: all of them, or a sorted list (in
/// pooled floats) when the resize skips most, as a coarse pyramid level does.
struct PlaneSamples {
    private let list: TensorBuffer?
    let count: Int

    static func all(_ n: Int) -> PlaneSamples { PlaneSamples(list: nil, count: n) }

    private init(list: TensorBuffer?, count: Int) {
        self.list = list
        self.count = count
    }

    /// The source indices a linear resize from n to m reads (each tap and its right
    /// neighbour, clamped), or every index when that is most of them.
    static func readBy(linearFrom n: Int, to m: Int) -> PlaneSamples {
        if m == n || 2 * m >= n { return .all(n) }
        let taps = PlaneResampling.LinearTaps(source: n, destination: m)
        var b = TensorBuffer(uninitializedCount: 2 * m)
        var count = 0
        taps.buffer.withUnsafeBufferPointer { t in
            b.withUnsafeMutableBufferPointer { l in
                var last = -1
                for d in 0..<m {
                    let s = Int(t[3 * d])
                    for i in s...min(s + 1, n - 1) where i > last {
                        l[count] = Float(i)
                        count += 1
                        last = i
                    }
                }
            }
        }
        return PlaneSamples(list: b, count: count)
    }

    @inline(__always)
    subscript(_ j: Int) -> Int { list.map { Int($0[j]) } ?? j }
}

/// Rows of a plane `width` wide per thread, at least: below some thousands of pixels a
/// thread's wake-up costs more than its share of the work (the coarse pyramid levels).
@inline(__always)
func minimumRows(width: Int) -> Int { max(1, 8192 / max(1, width)) }

/// `parallelRanges` over the rows of a plane, with at least `minimumRows` per thread.
@inline(__always)
func rowRanges(_ height: Int, width: Int, _ body: (Range<Int>) -> Void) {
    parallelRanges(height, minPerThread: minimumRows(width: width), body)
}

/// `parallelLanes(_:scratch:_:)` over the rows of a plane: the rows cut into as many
/// bands as threads (at least `minimumRows` each), each band with its own scratch.
@inline(__always)
func rowBands(_ height: Int, width: Int, scratch: Int, _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    let bands = max(1, min(ThreadBudget.available, height / minimumRows(width: width)))
    parallelLanes(bands, scratch: scratch) { lanes, s in
        for b in lanes { body((b * height / bands)..<((b + 1) * height / bands), s) }
    }
}
