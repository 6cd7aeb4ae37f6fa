/// Scaled dot-product multi-head attention on [B, T, heads·headDim] tensors (the layout
/// the q/k/v projections produce), without materialising per-head copies: each head is
/// a strided view that sgemm reads through its leading dimension.
public enum MultiHeadAttention {
    /// - Parameters:
    ///   - keyBias: optional additive bias per key, [B, Tk] (0 keep, −∞ drop).
    ///   - causal: query i attends to keys ≤ i + (Tk − Tq).
    ///   - kvHeads: grouped-query attention: k / v carry this many heads, each shared by
    ///     heads / kvHeads consecutive query heads (defaults to `heads`).
    public static func callAsFunction(
        q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int? = nil,
        scale: Float? = nil, keyBias: Tensor? = nil, causal: Bool = false
    ) -> Tensor {
        OpProfile.section(.attention) {
            attend(q: q, k: k, v: v, heads: heads, kvHeads: kvHeads, scale: scale, keyBias: keyBias, causal: causal)
        }
    }

    private static func attend(
        q: Tensor, k: Tensor, v: Tensor, heads: Int, kvHeads: Int?,
        scale: Float?, keyBias: Tensor?, causal: Bool
    ) -> Tensor {
        precondition(q.rank == 3 && k.rank == 3 && v.rank == 3, "attention: q/k/v must be [B, T, D]")
        let b = q.shape[0], tq = q.shape[1], tk = k.shape[1]
        let groups = kvHeads ?? heads
        precondition(groups > 0 && heads % groups == 0, "attention: \(heads) heads not divisible into \(groups) kv heads")
        let qDim = q.shape[2], kDim = k.shape[2], vDim = v.shape[2]
        precondition(qDim % heads == 0 && kDim % groups == 0 && vDim % groups == 0,
                     "attention: q \(q.shape), k \(k.shape), v \(v.shape) do not split into heads")
        let d = qDim / heads, dv = vDim / groups
        precondition(k.shape[0] == b && v.shape[0] == b && v.shape[1] == tk && kDim / groups == d,
                     "attention: q \(q.shape), k \(k.shape), v \(v.shape) disagree")
        let perGroup = heads / groups
        let outDim = heads * dv
        let alpha = scale ?? 1 / Float(d).squareRoot()
        var out = Tensor(uninitialized: [b, tq, outDim])
        if let keyBias { precondition(keyBias.count == b * tk, "attention: key bias \(keyBias.shape) is not [\(b), \(tk)]") }
        // Work items are (batch, head, block of query rows), each run start to finish on one
        // thread: its scores block (≤ 64K floats, 256 KB) stays in L2 from the QKᵀ product
        // through the softmax to the PV product, where one big scores matrix per head
        // (4 MB at 1024 tokens) streamed through memory three times and every small
        // product was split across threads.
        let rows = tq <= max(16, 65_536 / max(1, tk)) ? tq : max(16, 65_536 / max(1, tk) / 16 * 16)
        let blocksPerHead = (tq + rows - 1) / rows
        let items = b * heads * blocksPerHead
        let biasData = keyBias?.data ?? []
        biasData.withUnsafeBufferPointer { biasBuf in
        q.data.withUnsafeBufferPointer { qb in
            k.data.withUnsafeBufferPointer { kb in
                v.data.withUnsafeBufferPointer { vb in
                    out.data.withUnsafeMutableBufferPointer { ob in
                        let qp = qb.baseAddress!, kp = kb.baseAddress!, vp = vb.baseAddress!, op = ob.baseAddress!
                        let bp = keyBias == nil ? nil : biasBuf.baseAddress
                        parallelLanes(items, scratch: rows * tk) { range, s in
                                for item in range {
                                    let bi = item / (heads * blocksPerHead)
                                    let h = item / blocksPerHead % heads
                                    let q0 = item % blocksPerHead * rows
                                    let n = min(rows, tq - q0), g = h / perGroup
                                    BLAS.sgemm(transB: true, m: n, n: tk, k: d, alpha: alpha,
                                               a: qp + (bi * tq + q0) * qDim + h * d, lda: qDim,
                                               b: kp + bi * tk * kDim + g * d, ldb: kDim,
                                               c: s, ldc: tk)
                                    softmaxRows(s, rows: n, cols: tk, keyBias: bp.map { UnsafePointer($0 + bi * tk) },
                                                causalOffset: causal ? (tk - tq + q0) : nil)
                                    BLAS.sgemm(m: n, n: dv, k: tk,
                                               a: s, lda: tk,
                                               b: vp + bi * tk * vDim + g * dv, ldb: vDim,
                                               c: op + (bi * tq + q0) * outDim + h * dv, ldc: outDim)
                                }
                        }
                    }
                }
            }
        }
        }
        return out
    }

    /// In-place row softmax. With `causalOffset` o, row r keeps columns ≤ r + o.
    static func softmaxRows(_ s: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
                            keyBias: UnsafePointer<Float>?, causalOffset: Int?) {
        parallelRanges(rows, minPerThread: 8) { r in
            for row in r {
                let p = s + row * cols
                if let keyBias { for j in 0..<cols { p[j] += keyBias[j] } }
                var valid = cols
                if let causalOffset {
                    valid = max(0, min(cols, row + causalOffset + 1))
                    for j in valid..<cols { p[j] = 0 }
                }
                var m = -Float.infinity
                var mj = 0
                if valid >= 8 {
                    // Float's max is NaN-aware and keeps a scalar loop from vectorising.
                    var mv = vload(p)
                    mj = 8
                    while mj + 8 <= valid {
                        let v = vload(p + mj)
                        mv = mv.replacing(with: v, where: v .> mv)
                        mj += 8
                    }
                    for i in 0..<8 { m = max(m, mv[i]) }
                }
                for j in mj..<valid { m = max(m, p[j]) }
                // A query whose keys are all masked attends to nothing: zeros, as PyTorch's
                // SDPA returns (the eager softmax would spread it uniformly instead).
                if valid == 0 || m == -Float.infinity {
                    for j in 0..<cols { p[j] = 0 }
                    continue
                }
                var sum: Float = 0
                var j = 0
                let mv = Vec8(repeating: m)
                var acc = Vec8(repeating: 0)
                while j + 8 <= valid {
                    let e = vexp(vload(p + j) - mv)
                    vstore(e, p + j)
                    acc += e
                    j += 8
                }
                sum = acc.sum()
                if j < valid {
                    var t = Vec8(repeating: -Float.infinity)
                    for i in j..<valid { t[i - j] = p[i] - m }
                    let e = vexp(t)
                    for i in j..<valid { p[i] = e[i - j]; sum += e[i - j] }
                }
                let inv = 1 / sum
                for i in 0..<valid { p[i] *= inv }
            }
        }
    }
}
