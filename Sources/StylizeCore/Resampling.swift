/// Nearest-neighbour resize of an NHWC tensor with PyTorch's `F.interpolate(mode="nearest")`
/// index rule: src = floor(dst · in / out).
public func upsampleNearest(_ x: Tensor, height oh: Int, width ow: Int) -> Tensor {
    let (n, h, w, c) = (x.n, x.h, x.w, x.c)
    var out = Tensor(uninitialized: [n, oh, ow, c])
    let sy = Float(h) / Float(oh), sx = Float(w) / Float(ow)
    let exact2x = oh == 2 * h && ow == 2 * w
    x.data.withUnsafeBufferPointer { sb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let s = sb.baseAddress!, o = ob.baseAddress!
            parallelRanges(n * oh, minPerThread: 4) { r in
                for row in r {
                    let b = row / oh, oy = row % oh
                    let iy = exact2x ? oy / 2 : min(h - 1, Int((Float(oy) * sy).rounded(.down)))
                    for ox in 0..<ow {
                        let ix = exact2x ? ox / 2 : min(w - 1, Int((Float(ox) * sx).rounded(.down)))
                        (o + ((b * oh + oy) * ow + ox) * c).update(from: s + ((b * h + iy) * w + ix) * c, count: c)
                    }
                }
            }
        }
    }
    return out
}

/// Zero-pads an NHWC tensor on the bottom and right (diffusers' Downsample2D with
/// padding 0 pads (0, 1, 0, 1) before its stride-2 convolution).
public func padBottomRight(_ x: Tensor, bottom: Int, right: Int) -> Tensor {
    let (n, h, w, c) = (x.n, x.h, x.w, x.c)
    var out = Tensor(zeros: [n, h + bottom, w + right, c])
    x.data.withUnsafeBufferPointer { sb in
        out.data.withUnsafeMutableBufferPointer { ob in
            for b in 0..<n {
                for y in 0..<h {
                    (ob.baseAddress! + ((b * (h + bottom) + y) * (w + right)) * c)
                        .update(from: sb.baseAddress! + ((b * h + y) * w) * c, count: w * c)
                }
            }
        }
    }
    return out
}
