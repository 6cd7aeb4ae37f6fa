/// Full-resolution output from a reduced working resolution
/// (docs/ARCHITECTURE.md#working-resolution): the model runs on a downscaled frame and
/// its result is carried back to the frame's size as a per-pixel affine colour transform
/// of the full-resolution input, out_c = Σ_i A_ci · I_i + b_c, with the 12 coefficients
/// stored at the working resolution and interpolated bilinearly. The coefficients come
/// either from the model itself (an affine output head) or from a fast guided filter
/// fitted between the working-size input and output (He & Sun 2015).
///
/// Coefficient layout: [B, h, w, 12], channel 4·c + i = A_ci for i < 3 and 4·c + 3 = b_c.

/// Area-averaging downscale of an NHWC tensor (each output pixel the mean of the input
/// area it covers, fractional pixels weighted by coverage: OpenCV's INTER_AREA when
/// shrinking).
public func resizeArea(_ x: Tensor, height oh: Int, width ow: Int) -> Tensor {
    let (n, h, w, c) = (x.n, x.h, x.w, x.c)
    precondition(oh <= h && ow <= w, "resizeArea shrinks only")
    let ys = areaWeights(from: h, to: oh), xs = areaWeights(from: w, to: ow)
    var rows = Tensor(zeros: [n, oh, w, c])
    var out = Tensor(zeros: [n, oh, ow, c])
    x.data.withUnsafeBufferPointer { src in
        rows.data.withUnsafeMutableBufferPointer { mid in
            parallelRanges(n * oh, minPerThread: 4) { r in
                for row in r {
                    let (b, oy) = (row / oh, row % oh)
                    let dst = mid.baseAddress! + row * w * c
                    for (iy, weight) in ys[oy] {
                        let s = src.baseAddress! + ((b * h + iy) * w) * c
                        for k in 0..<(w * c) { dst[k] += weight * s[k] }
                    }
                }
            }
        }
        rows.data.withUnsafeBufferPointer { mid in
            out.data.withUnsafeMutableBufferPointer { dst in
                parallelRanges(n * oh, minPerThread: 4) { r in
                    for row in r {
                        let s = mid.baseAddress! + row * w * c
                        let d = dst.baseAddress! + row * ow * c
                        for ox in 0..<ow {
                            for (ix, weight) in xs[ox] {
                                for k in 0..<c { d[ox * c + k] += weight * s[ix * c + k] }
                            }
                        }
                    }
                }
            }
        }
    }
    return out
}

/// For each output index, the input indices it covers and their weights (summing to 1).
private func areaWeights(from n: Int, to m: Int) -> [[(Int, Float)]] {
    let scale = Double(n) / Double(m)
    return (0..<m).map { o in
        let lo = Double(o) * scale, hi = Double(o + 1) * scale
        var taps: [(Int, Float)] = []
        var i = Int(lo.rounded(.down))
        while Double(i) < hi && i < n {
            let cover = min(hi, Double(i + 1)) - max(lo, Double(i))
            if cover > 1e-9 { taps.append((i, Float(cover / scale))) }
            i += 1
        }
        return taps
    }
}

/// Applies coefficient maps [B, h, w, 12] to an image [B, H, W, 3] (H ≥ h, W ≥ w),
/// interpolating the coefficients bilinearly with pixel centres aligned
/// (src = (dst + 0.5) · h / H − 0.5, clamped at the edges, as OpenCV's INTER_LINEAR and
/// PyTorch's bilinear with align_corners=False). Output clamped to [-1, 1].
public func applyAffineColor(_ coefficients: Tensor, to image: Tensor) -> Tensor {
    let (n, h, w) = (coefficients.n, coefficients.h, coefficients.w)
    let (H, W) = (image.h, image.w)
    precondition(coefficients.c == 12 && image.c == 3 && image.n == n)
    var out = Tensor(uninitialized: image.shape)
    // Column taps, the same for every row: left index and weight of the right one.
    var columns = Tensor(uninitialized: [2 * W])
    for x in 0..<W {
        let sx = max(0, min(Float(w - 1), (Float(x) + 0.5) * Float(w) / Float(W) - 0.5))
        columns.data[2 * x] = sx.rounded(.down)
        columns.data[2 * x + 1] = sx - sx.rounded(.down)
    }
    // One interpolated coefficient row per output row, per thread lane, transposed per
    // pixel to columns [a·0 a·1 a·2 –] of the 3×3 matrix and the offset: the output is
    // then three multiply-adds of SIMD4 columns, with no horizontal sums.
    columns.data.withUnsafeBufferPointer { taps in
    coefficients.data.withUnsafeBufferPointer { cf in
        image.data.withUnsafeBufferPointer { img in
            out.data.withUnsafeMutableBufferPointer { dst in
                parallelLanes(n * H, scratch: w * 16) { rows, rowBuffer in
                    let lo = SIMD4<Float>(repeating: -1), hi = SIMD4<Float>(repeating: 1)
                    for row in rows {
                        let (b, y) = (row / H, row % H)
                        let sy = max(0, min(Float(h - 1), (Float(y) + 0.5) * Float(h) / Float(H) - 0.5))
                        let y0 = Int(sy), y1 = min(y0 + 1, h - 1)
                        let wy = sy - Float(y0)
                        let r0 = cf.baseAddress! + ((b * h + y0) * w) * 12
                        let r1 = cf.baseAddress! + ((b * h + y1) * w) * 12
                        for x in 0..<w {
                            let (p0, p1, t) = (r0 + 12 * x, r1 + 12 * x, rowBuffer + 16 * x)
                            // coefficient (channel c, input i) at 4c + i goes to column i, lane c
                            for c in 0..<3 { for i in 0..<4 {
                                t[4 * i + c] = p0[4 * c + i] + wy * (p1[4 * c + i] - p0[4 * c + i])
                            } }
                            t[3] = 0; t[7] = 0; t[11] = 0; t[15] = 0
                        }
                        let src = img.baseAddress! + ((b * H + y) * W) * 3
                        let o = dst.baseAddress! + ((b * H + y) * W) * 3
                        for x in 0..<W {
                            let x0 = Int(taps[2 * x]), x1 = min(x0 + 1, w - 1)
                            let wx = taps[2 * x + 1]
                            let (c0, c1) = (rowBuffer + 16 * x0, rowBuffer + 16 * x1)
                            let a0 = vload(c0), a1 = vload(c1), b0 = vload(c0 + 8), b1 = vload(c1 + 8)
                            let m01 = a0 + wx * (a1 - a0), m23 = b0 + wx * (b1 - b0)
                            var v = m23.highHalf
                            v += m01.lowHalf * src[3 * x]
                            v += m01.highHalf * src[3 * x + 1]
                            v += m23.lowHalf * src[3 * x + 2]
                            v = v.replacing(with: lo, where: v .< lo).replacing(with: hi, where: v .> hi)
                            o[3 * x] = v[0]; o[3 * x + 1] = v[1]; o[3 * x + 2] = v[2]
                        }
                    }
                }
            }
        }
    }
    }
    return out
}

/// Fast guided filter coefficients with an RGB guide: for every working-resolution pixel,
/// the affine colour transform (3×3 + offset) that best maps the guide to the target over
/// a (2r+1)² window, regularised by `eps` (in units of a [0, 1] image), then averaged over
/// the same window. `guide` and `target` are [B, h, w, 3] in [-1, 1]; windows reflect at
/// the border (OpenCV's BORDER_REFLECT).
public func guidedColorCoefficients(guide: Tensor, target: Tensor, radius r: Int, eps: Float) -> Tensor {
    let (n, h, w) = (guide.n, guide.h, guide.w)
    precondition(guide.shape == target.shape && guide.c == 3)
    let hw = h * w
    // Products the covariances need: 3 guide means, 3 target means, 6 guide second
    // moments, 9 cross moments.
    var moments = Tensor(uninitialized: [n, h, w, 21])
    guide.data.withUnsafeBufferPointer { g in
        target.data.withUnsafeBufferPointer { t in
            moments.data.withUnsafeMutableBufferPointer { m in
                parallelRanges(n * hw, minPerThread: 4096) { pixels in for p in pixels {
                    let gi = g.baseAddress! + 3 * p, ti = t.baseAddress! + 3 * p
                    let o = m.baseAddress! + 21 * p
                    o[0] = gi[0]; o[1] = gi[1]; o[2] = gi[2]
                    o[3] = ti[0]; o[4] = ti[1]; o[5] = ti[2]
                    o[6] = gi[0] * gi[0]; o[7] = gi[0] * gi[1]; o[8] = gi[0] * gi[2]
                    o[9] = gi[1] * gi[1]; o[10] = gi[1] * gi[2]; o[11] = gi[2] * gi[2]
                    for i in 0..<3 { for c in 0..<3 { o[12 + 3 * i + c] = gi[i] * ti[c] } }
                } }
            }
        }
    }
    let means = boxMean(moments, radius: r)
    // eps is for [0, 1] images; guide and target here span [-1, 1] (variances × 4).
    let e = 4 * eps
    var coefficients = Tensor(uninitialized: [n, h, w, 12])
    means.data.withUnsafeBufferPointer { mb in
        coefficients.data.withUnsafeMutableBufferPointer { cb in
            parallelRanges(n * hw, minPerThread: 4096) { pixels in for p in pixels {
                let m = mb.baseAddress! + 21 * p
                let (mi0, mi1, mi2) = (m[0], m[1], m[2])
                let s00 = m[6] - mi0 * mi0 + e, s01 = m[7] - mi0 * mi1, s02 = m[8] - mi0 * mi2
                let s11 = m[9] - mi1 * mi1 + e, s12 = m[10] - mi1 * mi2, s22 = m[11] - mi2 * mi2 + e
                // Inverse of the symmetric 3×3 by cofactors.
                let c00 = s11 * s22 - s12 * s12, c01 = s02 * s12 - s01 * s22, c02 = s01 * s12 - s02 * s11
                let c11 = s00 * s22 - s02 * s02, c12 = s01 * s02 - s00 * s12, c22 = s00 * s11 - s01 * s01
                let det = s00 * c00 + s01 * c01 + s02 * c02
                let inv = 1 / det
                let o = cb.baseAddress! + 12 * p
                for ch in 0..<3 {
                    let ms = m[3 + ch]
                    let v0 = m[12 + ch] - mi0 * ms, v1 = m[15 + ch] - mi1 * ms, v2 = m[18 + ch] - mi2 * ms
                    let a0 = (c00 * v0 + c01 * v1 + c02 * v2) * inv
                    let a1 = (c01 * v0 + c11 * v1 + c12 * v2) * inv
                    let a2 = (c02 * v0 + c12 * v1 + c22 * v2) * inv
                    o[4 * ch] = a0; o[4 * ch + 1] = a1; o[4 * ch + 2] = a2
                    o[4 * ch + 3] = ms - a0 * mi0 - a1 * mi1 - a2 * mi2
                }
            } }
        }
    }
    return boxMean(coefficients, radius: r)
}

/// Mean over a (2r+1)² window per channel, reflecting at the border
/// ("fedcba|abcdefgh|hgfedcb"), separably with running sums (cost independent of r).
func boxMean(_ x: Tensor, radius r: Int) -> Tensor {
    let (n, h, w, c) = (x.n, x.h, x.w, x.c)
    @inline(__always) func reflect(_ i: Int, _ size: Int) -> Int {
        var j = i
        while j < 0 || j >= size { j = j < 0 ? -j - 1 : 2 * size - j - 1 }
        return j
    }
    let scale = 1 / Float(2 * r + 1)
    var horizontal = Tensor(uninitialized: x.shape)
    var out = Tensor(uninitialized: x.shape)
    x.data.withUnsafeBufferPointer { src in
        horizontal.data.withUnsafeMutableBufferPointer { dst in
            parallelLanes(n * h, scratch: c) { rows, sum in
                for row in rows {
                    let s = src.baseAddress! + row * w * c, d = dst.baseAddress! + row * w * c
                    for k in 0..<c { sum[k] = 0 }
                    for dx in -r...r {
                        let p = s + reflect(dx, w) * c
                        for k in 0..<c { sum[k] += p[k] }
                    }
                    for xx in 0..<w {
                        let o = d + xx * c
                        for k in 0..<c { o[k] = sum[k] * scale }
                        guard xx + 1 < w else { break }
                        let add = s + reflect(xx + r + 1, w) * c, drop = s + reflect(xx - r, w) * c
                        for k in 0..<c { sum[k] += add[k] - drop[k] }
                    }
                }
            }
        }
    }
    let rowLength = w * c
    horizontal.data.withUnsafeBufferPointer { src in
        out.data.withUnsafeMutableBufferPointer { dst in
            // Each lane slides down whole images' columns: one image per lane piece.
            parallelLanes(n, scratch: rowLength) { images, sum in
                for b in images {
                    let base = src.baseAddress! + b * h * rowLength
                    for k in 0..<rowLength { sum[k] = 0 }
                    for dy in -r...r {
                        let p = base + reflect(dy, h) * rowLength
                        for k in 0..<rowLength { sum[k] += p[k] }
                    }
                    for y in 0..<h {
                        let o = dst.baseAddress! + (b * h + y) * rowLength
                        for k in 0..<rowLength { o[k] = sum[k] * scale }
                        guard y + 1 < h else { break }
                        let add = base + reflect(y + r + 1, h) * rowLength, drop = base + reflect(y - r, h) * rowLength
                        for k in 0..<rowLength { sum[k] += add[k] - drop[k] }
                    }
                }
            }
        }
    }
    return out
}
