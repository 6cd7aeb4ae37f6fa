/// y = x·Wᵀ + b over the last dimension, with W in PyTorch's [out, in] layout (which is
/// exactly what sgemm's transposed-B path wants, so no repacking is needed).
public struct LinearKernel: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: [Float]  // [out, in]
    public let bias: [Float]?

    public init(weight: [Float], bias: [Float]?, inFeatures: Int, outFeatures: Int) {
        precondition(weight.count == inFeatures * outFeatures)
        precondition(bias == nil || bias!.count == outFeatures)
        self.weight = weight
        self.bias = bias
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        OpProfile.section(.linear) { apply(x) }
    }

    private func apply(_ x: Tensor) -> Tensor {
        precondition(x.shape.last == inFeatures, "Linear: input \(x.shape) does not end in \(inFeatures)")
        let rows = x.count / inFeatures
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
        x.data.withUnsafeBufferPointer { src in
            weight.withUnsafeBufferPointer { wt in
                out.data.withUnsafeMutableBufferPointer { dst in
                    BLAS.sgemm(transB: true, m: rows, n: outFeatures, k: inFeatures,
                               a: src.baseAddress!, lda: inFeatures, b: wt.baseAddress!, ldb: inFeatures,
                               c: dst.baseAddress!, ldc: outFeatures)
                    if let bias { addRowBias(dst.baseAddress!, rows: rows, bias: bias) }
                }
            }
        }
        return out
    }
}
