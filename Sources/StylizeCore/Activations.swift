/// Element-wise activations, in place. Each works on any tensor shape.
public enum Activation: String, Sendable {
    case silu, gelu, geluTanh = "gelu_tanh", quickGelu = "quick_gelu", relu, tanh, identity

    /// Parses the activation names diffusers / transformers configs use.
    public init?(configName: String) {
        switch configName {
        case "silu", "swish": self = .silu
        case "gelu": self = .gelu
        case "gelu_pytorch_tanh", "gelu_new", "gelu_tanh": self = .geluTanh
        case "quick_gelu": self = .quickGelu
        case "relu": self = .relu
        case "tanh": self = .tanh
        case "identity", "linear": self = .identity
        default: return nil
        }
    }

    /// t = outputScale · act(inputScale · t), in place.
    public func apply(_ t: inout Tensor, inputScale: Float, outputScale: Float) {
        let count = t.count
        t.data.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            parallelRanges(count, minPerThread: 1 << 16) { r in
                var i = r.lowerBound
                while i + 8 <= r.upperBound {
                    vstore(outputScale * self.apply(inputScale * vload(base + i)), base + i)
                    i += 8
                }
                while i < r.upperBound {
                    var v = Vec8(repeating: 0)
                    v[0] = base[i]
                    base[i] = outputScale * self.apply(inputScale * v)[0]
                    i += 1
                }
            }
        }
    }

    public func apply(_ t: inout Tensor) {
        if self == .identity { return }
        let count = t.count
        t.data.withUnsafeMutableBufferPointer { buf in
            let base = buf.baseAddress!
            parallelRanges(count / 8, minPerThread: 16384) { r in
                self.applyVectors(base + r.lowerBound * 8, vectors: r.count)
            }
            let tail = count - count % 8
            if tail < count {
                var v = Vec8(repeating: 0)
                for i in tail..<count { v[i - tail] = base[i] }
                v = self.apply(v)
                for i in tail..<count { base[i] = v[i - tail] }
            }
        }
    }

    @inline(__always)
    func applyVectors(_ p: UnsafeMutablePointer<Float>, vectors: Int) {
        for i in 0..<vectors { vstore(apply(vload(p + 8 * i)), p + 8 * i) }
    }

    @inline(__always)
    public func apply(_ x: Vec8) -> Vec8 {
        switch self {
        case .silu: return x / (1 + vexp(-x))
        case .gelu: return 0.5 * x * (1 + verf(x * 0.70710678118654752))
        case .geluTanh:
            let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + vtanh(u))
        case .quickGelu: return x / (1 + vexp(-1.702 * x))
        case .relu: return x.replacing(with: 0, where: x .< 0)
        case .tanh: return vtanh(x)
        case .identity: return x
        }
    }
}

@inline(__always)
public func vtanh(_ x: Vec8) -> Vec8 {
    // tanh(x) = 1 − 2/(e^{2x} + 1); accurate to a few ulp away from 0, and near 0 the
    // series keeps relative precision.
    let one = Vec8(repeating: 1)
    let e = vexp(2 * vclamp(x, -44, 44))
    let big = one - 2 / (e + one)
    let x2 = x * x
    var poly = Vec8(repeating: Float(17.0 / 315))
    poly = Vec8(repeating: Float(2.0 / 15)) - x2 * poly
    poly = Vec8(repeating: Float(1.0 / 3)) - x2 * poly
    let small = x * (one - x2 * poly)
    return small.replacing(with: big, where: vabs(x) .> Vec8(repeating: 0.1))
}

/// GEGLU's gate: out[..., j] = x[..., j] · gelu(x[..., D + j]) for a last dimension of 2D
/// (diffusers' GEGLU: `hidden, gate = proj(x).chunk(2, dim=-1)`).
public func geglu(_ x: Tensor) -> Tensor { gatedProduct(x, activate: .gelu, activatedHalf: .second) }

/// out[..., j] = act(a[j]) · b[j] over the two halves of the last dimension; which half
/// is activated differs between GEGLU (second) and SwiGLU with a fused gate/up GEMM (first).
public enum GatedHalf: Sendable { case first, second }

public func gatedProduct(_ x: Tensor, activate act: Activation, activatedHalf: GatedHalf) -> Tensor {
    let twoD = x.shape.last!
    let d = twoD / 2
    let rows = x.count / twoD
    var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [d])
    x.data.withUnsafeBufferPointer { src in
        out.data.withUnsafeMutableBufferPointer { dst in
            let s = src.baseAddress!, o = dst.baseAddress!
            parallelRanges(rows, minPerThread: 16) { r in
                for row in r {
                    let first = s + row * twoD
                    let (plain, gate) = activatedHalf == .second ? (first, first + d) : (first + d, first)
                    let out = o + row * d
                    var j = 0
                    while j + 8 <= d {
                        vstore(vload(plain + j) * act.apply(vload(gate + j)), out + j)
                        j += 8
                    }
                    while j < d {
                        var g = Vec8(repeating: 0)
                        g[0] = gate[j]
                        out[j] = plain[j] * act.apply(g)[0]
                        j += 1
                    }
                }
            }
        }
    }
    return out
}

/// a += b, element-wise (residual connections).
public func addInPlace(_ a: inout Tensor, _ b: Tensor) {
    precondition(a.count == b.count, "addInPlace: \(a.shape) vs \(b.shape)")
    let count = a.count
    a.data.withUnsafeMutableBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            let x = pa.baseAddress!, y = pb.baseAddress!
            parallelRanges(count, minPerThread: 1 << 16) { r in
                for i in r { x[i] += y[i] }
            }
        }
    }
}

/// a = a · s + t, element-wise with scalars.
public func affineInPlace(_ a: inout Tensor, scale: Float, shift: Float) {
    a.data.withUnsafeMutableBufferPointer { p in
        for i in 0..<p.count { p[i] = p[i] * scale + shift }
    }
}
