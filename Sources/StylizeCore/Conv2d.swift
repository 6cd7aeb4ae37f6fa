import Synchronization

/// 2-D convolution on NHWC tensors as im2col + OpenBLAS sgemm.
///
/// Weights are packed once at load from PyTorch's [Cout, Cin, kh, kw] to
/// [Cout, kh, kw, Cin], which is the row order of an im2col patch, so the GEMM is
/// patches[M, kh·kw·Cin] × packedᵀ. 1×1 stride-1 convolutions skip im2col entirely.
public struct Conv2dKernel: Sendable {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelH: Int
    public let kernelW: Int
    public let stride: Int
    /// (top, left, bottom, right) zero padding.
    public let padding: (top: Int, left: Int, bottom: Int, right: Int)
    /// [Cout, kh, kw, Cin]
    public let packedWeight: [Float]
    public let bias: [Float]?
    /// Narrow layers run as direct convolutions (see DirectConvPlan).
    let direct: DirectConvPlan?
    /// Wide 3×3 stride-1 layers run as Winograd F(4×4, 3×3) or F(2×2, 3×3) when the input
    /// has enough tiles for that plan (see WinogradPlan); small inputs keep im2col, which
    /// reads fewer weights.
    let winograd: WinogradPlan?
    let winogradLarge: WinogradPlan?

    /// - Parameter torchWeight: PyTorch layout [Cout, Cin, kh, kw].
    public init(torchWeight: [Float], bias: [Float]?, inChannels: Int, outChannels: Int,
                kernelH: Int, kernelW: Int, stride: Int = 1,
                padding: (top: Int, left: Int, bottom: Int, right: Int)) {
        precondition(torchWeight.count == outChannels * inChannels * kernelH * kernelW)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelH = kernelH
        self.kernelW = kernelW
        self.stride = stride
        self.padding = padding
        self.bias = bias
        var packed = [Float](repeating: 0, count: torchWeight.count)
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                for y in 0..<kernelH {
                    for x in 0..<kernelW {
                        packed[((o * kernelH + y) * kernelW + x) * inChannels + i] =
                            torchWeight[((o * inChannels + i) * kernelH + y) * kernelW + x]
                    }
                }
            }
        }
        self.packedWeight = packed
        let pointwise = kernelH == 1 && kernelW == 1 && stride == 1
        direct = outChannels <= DirectConvPlan.maxOutputChannels && !pointwise
            ? DirectConvPlan(packedWeight: packed, bias: bias, cin: inChannels, cout: outChannels,
                             kh: kernelH, kw: kernelW, stride: stride, padding: padding)
            : nil
        let winogradApplies = direct == nil && Self.winogradEnabled
            && WinogradPlan.applies(cin: inChannels, cout: outChannels, kh: kernelH, kw: kernelW, stride: stride)
        func plan(_ tile: WinogradPlan.Tile) -> WinogradPlan {
            WinogradPlan(tile: tile, packedWeight: packed, bias: bias, cin: inChannels, cout: outChannels,
                         padTop: padding.top, padLeft: padding.left)
        }
        winograd = winogradApplies ? plan(.f2x3) : nil
        winogradLarge = winogradApplies && Self.largeWinogradEnabled && packed.count <= WinogradPlan.largeTileMaxWeights
            ? plan(.f4x3) : nil
    }

    /// Set before loading a model to keep every 3×3 layer on im2col (A/B measurements,
    /// and the parity tests that pin the im2col path).
    public static var winogradEnabled: Bool {
        get { winograd.load(ordering: .relaxed) }
        set { winograd.store(newValue, ordering: .relaxed) }
    }
    /// Set before loading to use F(2×2, 3×3) only.
    public static var largeWinogradEnabled: Bool {
        get { largeWinograd.load(ordering: .relaxed) }
        set { largeWinograd.store(newValue, ordering: .relaxed) }
    }
    private static let winograd = Atomic<Bool>(true)
    private static let largeWinograd = Atomic<Bool>(true)
    /// Below this many output tiles per call a Winograd plan is not used (the GEMMs get
    /// too short): F(4×4) falls back to F(2×2), F(2×2) to im2col.
    public static let winogradMinTiles = 64

    public func outputSize(height: Int, width: Int) -> (Int, Int) {
        ((height + padding.top + padding.bottom - kernelH) / stride + 1,
         (width + padding.left + padding.right - kernelW) / stride + 1)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.c == inChannels,
                     "Conv2d: input \(x.shape) does not have \(inChannels) channels")
        let (oh, ow) = outputSize(height: x.h, width: x.w)
        if let direct { return OpProfile.section(.convDirect) { direct(x, outHeight: oh, outWidth: ow) } }
        if let plan = winogradPlan(batch: x.n, outHeight: oh, outWidth: ow) {
            return OpProfile.section(.convWinograd) { plan(x, outHeight: oh, outWidth: ow) }
        }
        let pointwise = kernelH == 1 && kernelW == 1 && stride == 1 && padding == (0, 0, 0, 0)
        return OpProfile.section(pointwise ? .convPointwise : .convGemm) { gemmConv(x, outHeight: oh, outWidth: ow) }
    }

    /// The Winograd plan for this input size, if any (internal for tests).
    func winogradPlan(batch: Int, outHeight oh: Int, outWidth ow: Int) -> WinogradPlan? {
        if let plan = winogradLarge, batch * plan.tiles(outHeight: oh, outWidth: ow) >= Self.winogradMinTiles {
            return plan
        }
        if let plan = winograd, batch * plan.tiles(outHeight: oh, outWidth: ow) >= Self.winogradMinTiles {
            return plan
        }
        return nil
    }

    private func gemmConv(_ x: Tensor, outHeight oh: Int, outWidth ow: Int) -> Tensor {
        let (n, h, w) = (x.n, x.h, x.w)
        var out = Tensor(uninitialized: [n, oh, ow, outChannels])
        let k = kernelH * kernelW * inChannels
        let rows = n * oh * ow
        let isPointwise = kernelH == 1 && kernelW == 1 && stride == 1
            && padding == (0, 0, 0, 0)

        x.data.withUnsafeBufferPointer { src in
            packedWeight.withUnsafeBufferPointer { wt in
                out.data.withUnsafeMutableBufferPointer { dst in
                    if isPointwise {
                        BLAS.sgemm(transB: true, m: rows, n: outChannels, k: k,
                                   a: src.baseAddress!, lda: k, b: wt.baseAddress!, ldb: k,
                                   c: dst.baseAddress!, ldc: outChannels)
                    } else {
                        // Bound the patch buffer (≈ 32 MB) so large frames don't balloon memory.
                        let chunkRows = max(ow, min(rows, (8 << 20) / max(1, k)))
                        var patches = TensorBuffer(uninitializedCount: chunkRows * k)
                        patches.withUnsafeMutableBufferPointer { pbuf in
                            var start = 0
                            while start < rows {
                                let count = min(chunkRows, rows - start)
                                im2col(src.baseAddress!, h: h, w: w, oh: oh, ow: ow,
                                       firstRow: start, rowCount: count, into: pbuf.baseAddress!)
                                BLAS.sgemm(transB: true, m: count, n: outChannels, k: k,
                                           a: pbuf.baseAddress!, lda: k, b: wt.baseAddress!, ldb: k,
                                           c: dst.baseAddress! + start * outChannels, ldc: outChannels)
                                start += count
                            }
                        }
                    }
                    if let bias {
                        addRowBias(dst.baseAddress!, rows: rows, bias: bias)
                    }
                }
            }
        }
        return out
    }

    private func im2col(_ src: UnsafePointer<Float>, h: Int, w: Int, oh: Int, ow: Int,
                        firstRow: Int, rowCount: Int, into patches: UnsafeMutablePointer<Float>) {
        let cin = inChannels, kh = kernelH, kw = kernelW, s = stride
        let padTop = padding.top, padLeft = padding.left
        let k = kh * kw * cin
        parallelRanges(rowCount, minPerThread: 64) { r in
            for local in r {
                let row = firstRow + local
                let b = row / (oh * ow)
                let rem = row - b * oh * ow
                let oy = rem / ow, ox = rem - (rem / ow) * ow
                var dst = patches + local * k
                for ky in 0..<kh {
                    let iy = oy * s + ky - padTop
                    if iy < 0 || iy >= h {
                        dst.update(repeating: 0, count: kw * cin)
                        dst += kw * cin
                        continue
                    }
                    let rowBase = src + ((b * h + iy) * w) * cin
                    for kx in 0..<kw {
                        let ix = ox * s + kx - padLeft
                        if ix < 0 || ix >= w {
                            dst.update(repeating: 0, count: cin)
                        } else {
                            dst.update(from: rowBase + ix * cin, count: cin)
                        }
                        dst += cin
                    }
                }
            }
        }
    }
}

/// rows × bias.count matrix += bias broadcast over rows.
@inline(__always)
public func addRowBias(_ p: UnsafeMutablePointer<Float>, rows: Int, bias: [Float]) {
    let n = bias.count
    bias.withUnsafeBufferPointer { bb in
        let b = bb.baseAddress!
        parallelRanges(rows, minPerThread: 256) { r in
            for row in r {
                let o = p + row * n
                var j = 0
                while j + 8 <= n { vstore(vload(o + j) + vload(b + j), o + j); j += 8 }
                while j < n { o[j] += b[j]; j += 1 }
            }
        }
    }
}
