/// Helpers around optical flow for temporal consistency: the grey input OpenCV's flow is
/// computed on, backward warping by a flow field, and the forward–backward occlusion test.
public enum FlowWarp {
    /// Grey images [height, width] on the 0–255 scale, from NHWC RGB frames in [-1, 1]
    /// (frame `index` of the batch), as cv2.cvtColor(rgb8, COLOR_RGB2GRAY) gives them:
    /// each channel back to its byte (the rounding `ColorConversion.fromRGB` uses), then
    /// OpenCV 4's fixed-point luma (9798·R + 19235·G + 3735·B + 2¹⁴) >> 15, i.e. 0.299,
    /// 0.587, 0.114 in 15 bits (plain rounding of the float sum differs on a few pixels
    /// in a thousand). Reference flows are computed on such uint8 grey frames, so the
    /// flow sees the same quantised values.
    public static func grey(_ frames: Tensor, index: Int = 0) -> Tensor {
        precondition(frames.rank == 4 && frames.c == 3 && index >= 0 && index < frames.n,
                     "FlowWarp.grey: NHWC RGB frames expected, got \(frames.shape) (index \(index))")
        let (h, w) = (frames.h, frames.w)
        var out = Tensor(uninitialized: [h, w])
        frames.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                let s = src.baseAddress! + index * h * w * 3, d = dst.baseAddress!
                @inline(__always) func byte(_ v: Float) -> Int32 { Int32(min(255, max(0, (v + 1) * 127.5 + 0.5))) }
                parallelRanges(h, minPerThread: 16) { rows in
                    for i in (rows.lowerBound * w)..<(rows.upperBound * w) {
                        let (r, g, b) = (byte(s[3 * i]), byte(s[3 * i + 1]), byte(s[3 * i + 2]))
                        d[i] = Float((r &* 9798 &+ g &* 19235 &+ b &* 3735 &+ (1 << 14)) >> 15)
                    }
                }
            }
        }
        return out
    }

    /// Backward warp: out(x, y) = image sampled bilinearly at (x + dx, y + dy), with
    /// (dx, dy) = flow(x, y). The flow lives on the output's grid, so to bring the previous
    /// frame onto the current one pass the flow from the current frame to the previous
    /// (FarnebackFlow().flow(from: current, to: previous)). This is cv2.remap(image,
    /// grid + flow, INTER_LINEAR) except that remap rounds positions to 1/32 pixel and
    /// this does not.
    ///
    /// `valid` ([1, H, W, 1]) is 1 where the sample lies inside the frame
    /// (0 ≤ x + dx ≤ W − 1 and 0 ≤ y + dy ≤ H − 1) and 0 where it falls outside (or the
    /// flow is not finite); there the value is taken from the nearest edge pixel, so the
    /// output stays a plausible image. `image` is NHWC [N, H, W, C]; every frame of the
    /// batch is warped by the same flow [H, W, 2].
    public static func warp(_ image: Tensor, flow: Tensor) -> (warped: Tensor, valid: Tensor) {
        precondition(image.rank == 4 && flow.shape == [image.h, image.w, 2],
                     "FlowWarp.warp: image \(image.shape) and flow \(flow.shape) (expected [H, W, 2])")
        let (n, h, w, c) = (image.n, image.h, image.w, image.c)
        var warped = Tensor(uninitialized: image.shape)
        var valid = Tensor(uninitialized: [1, h, w, 1])
        image.data.withUnsafeBufferPointer { ib in
        flow.data.withUnsafeBufferPointer { fb in
        warped.data.withUnsafeMutableBufferPointer { ob in
        valid.data.withUnsafeMutableBufferPointer { vb in
            let (src, f, dst, mask) = (ib.baseAddress!, fb.baseAddress!, ob.baseAddress!, vb.baseAddress!)
            parallelRanges(h, minPerThread: max(1, 8192 / w)) { rows in
                for y in rows {
                    var x = 0
                    if c == 3 {
                        // Eight pixels' positions, weights and validity per step; then each
                        // pixel's four neighbours blended as 4-lane vectors (RGB and one lane
                        // of the next pixel, unused; the very last pixel goes the scalar way).
                        while x + 8 <= w && (y < h - 1 || x + 8 < w) {
                            let t = BilinearTaps8(flow: f + 2 * (y * w + x), x: x, y: y, width: w, height: h)
                            UnsafeMutableRawPointer(mask + y * w + x).storeBytes(of: t.valid, as: SIMD8<Float>.self)
                            for b in 0..<n {
                                let plane = src + b * h * w * 3
                                let o = dst + (b * h * w + y * w + x) * 3
                                for l in 0..<8 { t.sample3(l, plane, into: o + 3 * l) }
                            }
                            x += 8
                        }
                    }
                    for x in x..<w {
                        let p = y * w + x
                        let sx = Float(x) + f[2 * p], sy = Float(y) + f[2 * p + 1]
                        let inside = sx >= 0 && sx <= Float(w - 1) && sy >= 0 && sy <= Float(h - 1)
                        mask[p] = inside ? 1 : 0
                        let tap = BilinearTap(sx, sy, width: w, height: h)
                        for b in 0..<n {
                            let plane = src + b * h * w * c
                            let o = dst + (b * h * w + p) * c
                            for ch in 0..<c { o[ch] = tap.sample(plane, channels: c, channel: ch) }
                        }
                    }
                }
            }
        }}}}
        return (warped, valid)
    }

    /// The temporal blend toward a warped image in one pass: frame `i` of `out`
    /// ([N, H, W, 3]) moves `alpha` of the way toward `source` sampled as `warp(_:flow:)`
    /// samples it, at the pixels whose sample lies inside the frame and whose cell of the
    /// coarse `trust` map is 1 (elsewhere it is left alone). Pixel (x, y) reads the cell
    /// (y·th / H, x·tw / W) of the region th × tw at the top left of `trust` ([TH, TW]).
    /// `source` is [1, H, W, 3], or nil for frame i − 1 of `out` itself (as blended).
    /// The same values as `warp` then a masked mix, without the warped image, its validity
    /// plane or a trust map at the frame's size.
    public static func blendWarped(_ out: inout Tensor, frame i: Int, toward source: Tensor?, flow: Tensor,
                                   trust: Tensor, trustRegion: (h: Int, w: Int), alpha: Float) {
        let (h, w) = (out.h, out.w)
        let (th, tw, trustStride) = (trustRegion.h, trustRegion.w, trust.shape[1])
        precondition(out.c == 3 && flow.shape == [h, w, 2] && i < out.n && (source != nil || i > 0)
                     && source.map { $0.shape == [1, h, w, 3] } ?? true
                     && trust.rank == 2 && th <= trust.shape[0] && tw <= trustStride && th > 0 && tw > 0,
                     "FlowWarp.blendWarped: frames \(out.shape), frame \(i), source \(source?.shape ?? []), "
                     + "flow \(flow.shape), trust \(trust.shape) region \(th)×\(tw)")
        let plane = h * w * 3
        func run(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>) {
            flow.data.withUnsafeBufferPointer { fb in
            trust.data.withUnsafeBufferPointer { tb in
                let (f, cells) = (fb.baseAddress!, tb.baseAddress!)
                parallelRanges(h, minPerThread: max(1, 8192 / w)) { rows in
                    for y in rows {
                        let row = cells + min(th - 1, y * th / h) * trustStride
                        // trust column x·tw / W, stepped along the row
                        var (column, carry) = (0, 0)
                        @inline(__always) func trusted() -> Bool {
                            let ok = row[column] > 0.5
                            carry += tw
                            while carry >= w { carry -= w; column += 1 }
                            return ok
                        }
                        @inline(__always) func mix(_ p: Int, _ v: SIMD4<Float>) {
                            let o = dst + 3 * p
                            o[0] += alpha * (v[0] - o[0])
                            o[1] += alpha * (v[1] - o[1])
                            o[2] += alpha * (v[2] - o[2])
                        }
                        var x = 0
                        while x + 8 <= w && (y < h - 1 || x + 8 < w) {
                            let t = BilinearTaps8(flow: f + 2 * (y * w + x), x: x, y: y, width: w, height: h)
                            for l in 0..<8 where trusted() && t.valid[l] > 0 { mix(y * w + x + l, t.sample4(l, src)) }
                            x += 8
                        }
                        for x in x..<w where trusted() {
                            let p = y * w + x
                            let sx = Float(x) + f[2 * p], sy = Float(y) + f[2 * p + 1]
                            guard sx >= 0 && sx <= Float(w - 1) && sy >= 0 && sy <= Float(h - 1) else { continue }
                            let tap = BilinearTap(sx, sy, width: w, height: h)
                            mix(p, SIMD4(tap.sample(src, channels: 3, channel: 0), tap.sample(src, channels: 3, channel: 1),
                                         tap.sample(src, channels: 3, channel: 2), 0))
                        }
                    }
                }
            }}
        }
        out.data.withUnsafeMutableBufferPointer { ob in
            let dst = ob.baseAddress! + i * plane
            if let source {
                source.data.withUnsafeBufferPointer { run(dst, $0.baseAddress!) }
            } else {
                run(dst, UnsafePointer(dst - plane))
            }
        }
    }

    /// Occlusion by forward–backward consistency (Sundaram, Brox & Keutzer 2010, as the
    /// video style-transfer work uses it). `forward` is the flow prev → cur and `backward`
    /// cur → prev, both [H, W, 2]; the test is made on the current frame's grid, where the
    /// backward flow is used to warp. With b = backward(x) and f = forward(x + b) (read
    /// bilinearly), a consistent pair returns to its start, f ≈ −b, and x is marked
    /// occluded (1) when
    ///
    ///     |f + b|² > 0.01·(|f|² + |b|²) + 0.5
    ///
    /// (the tolerance grows with the motion, since flow errors do). A pixel whose b points
    /// outside the frame is occluded too: nothing in the previous frame can be checked for
    /// it. Returns [1, H, W, 1]: 1 occluded, 0 consistent.
    public static func occlusion(forward: Tensor, backward: Tensor) -> Tensor {
        precondition(forward.rank == 3 && forward.shape == backward.shape && forward.shape[2] == 2,
                     "FlowWarp.occlusion: two [H, W, 2] flows expected, got \(forward.shape) and \(backward.shape)")
        let (h, w) = (forward.shape[0], forward.shape[1])
        var out = Tensor(uninitialized: [1, h, w, 1])
        forward.data.withUnsafeBufferPointer { fb in
        backward.data.withUnsafeBufferPointer { bb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let (fw, bw, o) = (fb.baseAddress!, bb.baseAddress!, ob.baseAddress!)
            parallelRanges(h, minPerThread: 4) { rows in
                for y in rows {
                    for x in 0..<w {
                        let p = y * w + x
                        let (bx, by) = (bw[2 * p], bw[2 * p + 1])
                        let sx = Float(x) + bx, sy = Float(y) + by
                        guard sx >= 0 && sx <= Float(w - 1) && sy >= 0 && sy <= Float(h - 1) else {
                            o[p] = 1
                            continue
                        }
                        let tap = BilinearTap(sx, sy, width: w, height: h)
                        let fx = tap.sample(fw, channels: 2, channel: 0), fy = tap.sample(fw, channels: 2, channel: 1)
                        let (ex, ey) = (fx + bx, fy + by)
                        let occluded = ex * ex + ey * ey > 0.01 * (fx * fx + fy * fy + bx * bx + by * by) + 0.5
                        o[p] = occluded ? 1 : 0
                    }
                }
            }
        }}}
        return out
    }
}

/// The four neighbours and weights of a bilinear read at (x, y), positions clamped to the
/// frame (so outside it the nearest edge pixel is read).
struct BilinearTap {
    let i00: Int, i01: Int, i10: Int, i11: Int
    let fx: Float, fy: Float

    @inline(__always)
    init(_ x: Float, _ y: Float, width w: Int, height h: Int) {
        let cx = x.isNaN ? 0 : min(max(x, 0), Float(w - 1))
        let cy = y.isNaN ? 0 : min(max(y, 0), Float(h - 1))
        let x0 = Int(cx.rounded(.down)), y0 = Int(cy.rounded(.down))
        let x1 = min(x0 + 1, w - 1), y1 = min(y0 + 1, h - 1)
        (fx, fy) = (cx - Float(x0), cy - Float(y0))
        (i00, i01, i10, i11) = (y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1)
    }

    @inline(__always)
    func sample(_ plane: UnsafePointer<Float>, channels c: Int, channel ch: Int) -> Float {
        let top = plane[i00 * c + ch] + fx * (plane[i01 * c + ch] - plane[i00 * c + ch])
        let bottom = plane[i10 * c + ch] + fx * (plane[i11 * c + ch] - plane[i10 * c + ch])
        return top + fy * (bottom - top)
    }
}

/// `BilinearTap` for eight consecutive pixels of a row displaced by their flow vectors:
/// the same clamping and weights, computed as vectors.
struct BilinearTaps8 {
    // Plane indices as floats (exact below 2²⁴ pixels): the stdlib's vector float→int
    // conversion is a generic call, not an instruction.
    let index: SIMD8<Float>
    let next: SIMD8<Float>
    let below: SIMD8<Float>
    let fx: SIMD8<Float>
    let fy: SIMD8<Float>
    /// 1 where the displaced position lies inside the frame, else 0.
    let valid: SIMD8<Float>

    @inline(__always)
    init(flow f: UnsafePointer<Float>, x: Int, y: Int, width w: Int, height h: Int) {
        typealias F = SIMD8<Float>
        let v = UnsafeRawPointer(f).loadUnaligned(as: SIMD16<Float>.self)
        let sx = F(0, 1, 2, 3, 4, 5, 6, 7) + Float(x) + v.evenHalf
        let sy = Float(y) + v.oddHalf
        let (maxX, maxY) = (Float(w - 1), Float(h - 1))
        let inside = (sx .>= 0) .& (sx .<= maxX) .& (sy .>= 0) .& (sy .<= maxY)
        valid = F(repeating: 0).replacing(with: 1, where: inside)
        // Clamped into the frame; NaN (which fails every comparison) to 0, as the scalar tap.
        @inline(__always) func clamp(_ s: F, _ upper: Float) -> F {
            s.replacing(with: 0, where: .!(s .>= 0)).replacing(with: upper, where: s .> upper)
        }
        let cx = clamp(sx, maxX), cy = clamp(sy, maxY)
        let x0 = cx.rounded(.down), y0 = cy.rounded(.down)
        (fx, fy) = (cx - x0, cy - y0)
        index = y0 * Float(w) + x0
        next = F(repeating: 1).replacing(with: 0, where: x0 .>= maxX)
        below = F(repeating: Float(w)).replacing(with: 0, where: y0 .>= maxY)
    }

    /// Lane l's RGB value from an interleaved RGB plane (reads one float past the
    /// bottom-right neighbour: not for the plane's last pixel).
    @inline(__always)
    func sample3(_ l: Int, _ plane: UnsafePointer<Float>, into o: UnsafeMutablePointer<Float>) {
        let v = sample4(l, plane)
        (o[0], o[1], o[2]) = (v[0], v[1], v[2])
    }

    /// `sample3`'s value in lanes 0–2 (lane 3: the next pixel's red, unused).
    @inline(__always)
    func sample4(_ l: Int, _ plane: UnsafePointer<Float>) -> SIMD4<Float> {
        @inline(__always) func pixel(_ i: Int) -> SIMD4<Float> { UnsafeRawPointer(plane + 3 * i).loadUnaligned(as: SIMD4<Float>.self) }
        let (i, right, down) = (Int(index[l]), Int(next[l]), Int(below[l]))
        let (p00, p01) = (pixel(i), pixel(i + right))
        let (p10, p11) = (pixel(i + down), pixel(i + down + right))
        let (ax, ay) = (fx[l], fy[l])
        let top = p00 + ax * (p01 - p00)
        let bottom = p10 + ax * (p11 - p10)
        return top + ay * (bottom - top)
    }
}
