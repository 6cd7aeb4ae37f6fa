import Foundation
@testable import StylizeCore

/// Naive reference implementations written straight from the PyTorch definitions,
/// independent of the optimised kernels under test.
enum Reference {
    static func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        var state = seed &+ 0x9E37_79B9
        let values = (0..<shape.reduce(1, *)).map { _ -> Float in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return (Float(state >> 40) / Float(1 << 24) * 2 - 1) * scale
        }
        return Tensor(shape: shape, data: values)
    }

    /// PyTorch conv2d on NHWC input with weight [Cout, Cin, kh, kw].
    static func conv2d(_ x: Tensor, weight: [Float], bias: [Float]?, cout: Int, kh: Int, kw: Int,
                       stride: Int, pad: (Int, Int, Int, Int)) -> Tensor {
        let (n, h, w, cin) = (x.n, x.h, x.w, x.c)
        let oh = (h + pad.0 + pad.2 - kh) / stride + 1
        let ow = (w + pad.1 + pad.3 - kw) / stride + 1
        var out = Tensor(zeros: [n, oh, ow, cout])
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for o in 0..<cout {
            var acc = Double(bias?[o] ?? 0)
            for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * stride + ky - pad.0, ix = ox * stride + kx - pad.1
                if iy < 0 || iy >= h || ix < 0 || ix >= w { continue }
                for i in 0..<cin {
                    acc += Double(x.data[((b * h + iy) * w + ix) * cin + i])
                        * Double(weight[((o * cin + i) * kh + ky) * kw + kx])
                }
            } }
            out.data[((b * oh + oy) * ow + ox) * cout + o] = Float(acc)
        } } } }
        return out
    }

    static func attention(q: Tensor, k: Tensor, v: Tensor, heads: Int, keyBias: Tensor?, causal: Bool) -> Tensor {
        let (b, tq, dq) = (q.shape[0], q.shape[1], q.shape[2])
        let tk = k.shape[1], dv = v.shape[2]
        let d = dq / heads, e = dv / heads
        var out = Tensor(zeros: [b, tq, dv])
        for bi in 0..<b { for h in 0..<heads { for i in 0..<tq {
            var scores = [Double](repeating: 0, count: tk)
            for j in 0..<tk {
                var s = 0.0
                for x in 0..<d { s += Double(q.data[(bi * tq + i) * dq + h * d + x]) * Double(k.data[(bi * tk + j) * dq + h * d + x]) }
                scores[j] = s / Double(d).squareRoot() + Double(keyBias?.data[bi * tk + j] ?? 0)
                if causal && j > i + (tk - tq) { scores[j] = -.infinity }
            }
            let m = scores.max()!
            let exps = scores.map { exp($0 - m) }
            let sum = exps.reduce(0, +)
            for x in 0..<e {
                var acc = 0.0
                for j in 0..<tk { acc += exps[j] / sum * Double(v.data[(bi * tk + j) * dv + h * e + x]) }
                out.data[(bi * tq + i) * dv + h * e + x] = Float(acc)
            }
        } } }
        return out
    }
}

func maxRelativeError(_ a: Tensor, _ b: Tensor) -> Float {
    a.maxAbsDifference(b) / (1 + b.maxAbs)
}
