/// Thresholds of `edgeMap` on the Sobel gradient magnitude of the blurred luma (luma on
/// a 0–1 scale, so a full black-to-white step gives 4).
public struct EdgeMapSettings: Sendable, Equatable {
    public var low: Float = 0.3
    public var high: Float = 0.6
    public init() {}
}

/// A Canny-like edge map of NHWC frames in [-1, 1]: luma, 3×3 binomial blur, Sobel
/// gradient, non-maximum suppression across the gradient, double threshold where weak
/// edges survive next to strong ones (one hysteresis pass). Edges are white (1) on black
/// (-1) in all three channels, the conditioning image ControlNet-LLLite edge adapters
/// are trained on. Scratch comes from the tensor pool.
public func edgeMap(_ frames: Tensor, settings: EdgeMapSettings = EdgeMapSettings()) -> Tensor {
    let (b, h, w) = (frames.n, frames.h, frames.w)
    var out = Tensor(uninitialized: frames.shape)
    var luma = Tensor(uninitialized: [h * w])
    var blurred = Tensor(uninitialized: [h * w])
    var magnitude = Tensor(uninitialized: [h * w])
    var direction = Tensor(uninitialized: [h * w])
    var kept = Tensor(uninitialized: [h * w])
    @inline(__always) func clampX(_ x: Int) -> Int { min(w - 1, max(0, x)) }
    @inline(__always) func clampY(_ y: Int) -> Int { min(h - 1, max(0, y)) }
    for n in 0..<b {
        frames.data.withUnsafeBufferPointer { src in
            luma.data.withUnsafeMutableBufferPointer { l in
                let base = n * h * w * 3
                for i in 0..<(h * w) {
                    let p = base + i * 3
                    l[i] = (0.299 * src[p] + 0.587 * src[p + 1] + 0.114 * src[p + 2] + 1) * 0.5
                }
            }
        }
        luma.data.withUnsafeBufferPointer { l in
            blurred.data.withUnsafeMutableBufferPointer { g in
                for y in 0..<h {
                    for x in 0..<w {
                        var s: Float = 0
                        for dy in -1...1 {
                            let row = clampY(y + dy) * w
                            let wy: Float = dy == 0 ? 2 : 1
                            s += wy * (l[row + clampX(x - 1)] + 2 * l[row + x] + l[row + clampX(x + 1)])
                        }
                        g[y * w + x] = s / 16
                    }
                }
            }
        }
        blurred.data.withUnsafeBufferPointer { g in
            magnitude.data.withUnsafeMutableBufferPointer { m in
                direction.data.withUnsafeMutableBufferPointer { d in
                    for y in 0..<h {
                        let (up, mid, dn) = (clampY(y - 1) * w, y * w, clampY(y + 1) * w)
                        for x in 0..<w {
                            let (xl, xr) = (clampX(x - 1), clampX(x + 1))
                            let gx = (g[up + xr] + 2 * g[mid + xr] + g[dn + xr]) - (g[up + xl] + 2 * g[mid + xl] + g[dn + xl])
                            let gy = (g[dn + xl] + 2 * g[dn + x] + g[dn + xr]) - (g[up + xl] + 2 * g[up + x] + g[up + xr])
                            m[mid + x] = (gx * gx + gy * gy).squareRoot()
                            // 0: horizontal gradient, 1: 45°, 2: vertical, 3: 135° (tan 22.5° ≈ 0.4142).
                            let (ax, ay) = (abs(gx), abs(gy))
                            d[mid + x] = ay <= 0.4142 * ax ? 0 : (ax <= 0.4142 * ay ? 2 : (gx * gy > 0 ? 1 : 3))
                        }
                    }
                }
            }
        }
        magnitude.data.withUnsafeBufferPointer { m in
            direction.data.withUnsafeBufferPointer { d in
                kept.data.withUnsafeMutableBufferPointer { k in
                    for y in 0..<h {
                        for x in 0..<w {
                            let (dx, dy): (Int, Int)
                            switch d[y * w + x] {
                            case 0: (dx, dy) = (1, 0)
                            case 1: (dx, dy) = (1, 1)
                            case 2: (dx, dy) = (0, 1)
                            default: (dx, dy) = (1, -1)
                            }
                            let v = m[y * w + x]
                            let a = m[clampY(y + dy) * w + clampX(x + dx)]
                            let c = m[clampY(y - dy) * w + clampX(x - dx)]
                            // 2: strong, 1: weak, 0: none.
                            k[y * w + x] = v < a || v < c || v < settings.low ? 0 : (v >= settings.high ? 2 : 1)
                        }
                    }
                }
            }
        }
        kept.data.withUnsafeBufferPointer { k in
            out.data.withUnsafeMutableBufferPointer { o in
                let base = n * h * w * 3
                for y in 0..<h {
                    for x in 0..<w {
                        var edge = k[y * w + x] == 2
                        if !edge && k[y * w + x] == 1 {
                            search: for dy in -1...1 {
                                for dx in -1...1 where k[clampY(y + dy) * w + clampX(x + dx)] == 2 {
                                    edge = true
                                    break search
                                }
                            }
                        }
                        let v: Float = edge ? 1 : -1
                        let p = base + (y * w + x) * 3
                        o[p] = v; o[p + 1] = v; o[p + 2] = v
                    }
                }
            }
        }
    }
    return out
}
