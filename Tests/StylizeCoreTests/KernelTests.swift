import Foundation
import XCTest
@testable import StylizeCore

final class KernelTests: XCTestCase {
    func testConv2dMatchesDirectConvolutionForEveryShapeClass() {
        // (cin, cout, kernel, stride, padding, h, w)
        let cases: [(Int, Int, Int, Int, (Int, Int, Int, Int), Int, Int)] = [
            (3, 8, 3, 1, (1, 1, 1, 1), 9, 7),     // ordinary 3×3
            (5, 4, 1, 1, (0, 0, 0, 0), 6, 5),     // pointwise fast path
            (4, 6, 3, 2, (1, 1, 1, 1), 11, 8),    // stride 2 (downsampler)
            (4, 6, 3, 2, (0, 0, 1, 1), 8, 8),     // asymmetric padding
            (2, 3, 5, 1, (2, 2, 2, 2), 7, 10),    // 5×5
            (3, 2, 4, 4, (0, 0, 0, 0), 12, 8),    // patchify-style
            (6, 5, 1, 2, (0, 0, 0, 0), 7, 7),     // strided 1×1
            (5, 12, 3, 1, (1, 1, 1, 1), 6, 9),    // direct, two vectors with a partial one
            (16, 16, 3, 2, (1, 1, 1, 1), 9, 7),   // direct, two full vectors, stride 2
            (7, 27, 3, 1, (1, 1, 1, 1), 5, 6),    // direct, general (four vectors)
            (9, 40, 3, 1, (1, 1, 1, 1), 5, 6),    // wide: im2col + sgemm
        ]
        for (i, c) in cases.enumerated() {
            let (cin, cout, k, s, pad, h, w) = c
            let x = Reference.randomTensor([2, h, w, cin], seed: UInt64(i))
            let weight = Reference.randomTensor([cout, cin, k, k], seed: UInt64(100 + i)).data.array
            let bias = Reference.randomTensor([cout], seed: UInt64(200 + i)).data.array
            let kernel = Conv2dKernel(torchWeight: weight, bias: bias, inChannels: cin, outChannels: cout,
                                      kernelH: k, kernelW: k, stride: s, padding: pad)
            let ours = kernel(x)
            let ref = Reference.conv2d(x, weight: weight, bias: bias, cout: cout, kh: k, kw: k, stride: s, pad: pad)
            XCTAssertEqual(ours.shape, ref.shape, "case \(i)")
            XCTAssertLessThan(maxRelativeError(ours, ref), 1e-5, "case \(i)")
        }
    }

    func testUpsampledConvolutionMatchesUpsampleThenConvolve() {
        // (cin, cout, h, w): every direct row kernel (≤ 8, 9–16, 17–32 channels with partial
        // vectors) and widths that leave partial pixel groups.
        let cases = [(16, 16, 5, 7), (16, 12, 4, 5), (16, 3, 3, 6), (5, 27, 4, 3), (3, 32, 2, 9), (8, 1, 1, 1)]
        for (i, (cin, cout, h, w)) in cases.enumerated() {
            let x = Reference.randomTensor([2, h, w, cin], seed: UInt64(300 + i))
            let weight = Reference.randomTensor([cout, cin, 3, 3], seed: UInt64(400 + i)).data.array
            let bias = Reference.randomTensor([cout], seed: UInt64(500 + i)).data.array
            let conv = Conv2dKernel(torchWeight: weight, bias: i % 2 == 0 ? bias : nil, inChannels: cin, outChannels: cout,
                                    kernelH: 3, kernelW: 3, stride: 1, padding: (1, 1, 1, 1))
            let plan = UpsampledConvPlan(conv)
            XCTAssertNotNil(plan, "case \(i)")
            let up = upsampleNearest(x, height: 2 * h, width: 2 * w)
            let ref = Reference.conv2d(up, weight: weight, bias: i % 2 == 0 ? bias : nil, cout: cout, kh: 3, kw: 3,
                                       stride: 1, pad: (1, 1, 1, 1))
            let ours = plan!(x)
            XCTAssertEqual(ours.shape, [2, 2 * h, 2 * w, cout], "case \(i)")
            XCTAssertLessThan(maxRelativeError(ours, ref), 1e-5, "case \(i)")
        }
        // Only narrow 3×3, stride-1, padding-1 layers fuse.
        func conv(_ cout: Int, k: Int = 3, stride: Int = 1, pad: Int = 1) -> Conv2dKernel {
            Conv2dKernel(torchWeight: [Float](repeating: 0.1, count: cout * 4 * k * k), bias: nil, inChannels: 4,
                         outChannels: cout, kernelH: k, kernelW: k, stride: stride, padding: (pad, pad, pad, pad))
        }
        XCTAssertNil(UpsampledConvPlan(conv(64)))
        XCTAssertNil(UpsampledConvPlan(conv(8, stride: 2)))
        XCTAssertNil(UpsampledConvPlan(conv(8, pad: 0)))
        XCTAssertNil(UpsampledConvPlan(conv(8, k: 1, pad: 0)))
    }

    func testConv2dChunksLargeInputsWithoutChangingResults() {
        // 8M-float patch budget / (3·3·64) ≈ 14.5k rows per chunk: 2·96·96 rows forces two chunks.
        let x = Reference.randomTensor([2, 96, 96, 64], seed: 7)
        let weight = Reference.randomTensor([4, 64, 3, 3], seed: 8, scale: 0.1).data.array
        let kernel = Conv2dKernel(torchWeight: weight, bias: nil, inChannels: 64, outChannels: 4,
                                  kernelH: 3, kernelW: 3, stride: 1, padding: (1, 1, 1, 1))
        let ours = kernel(x)
        let ref = Reference.conv2d(x, weight: weight, bias: nil, cout: 4, kh: 3, kw: 3, stride: 1, pad: (1, 1, 1, 1))
        XCTAssertLessThan(maxRelativeError(ours, ref), 1e-5)
    }

    func testWinogradConvolutionMatchesDirectConvolution() {
        // (batch, cin, cout, padding, h, w, tile expected): partial edge tiles, asymmetric
        // padding, several passes (2·24·24 F(4×4) tiles), F(4×4) falling back to F(2×2) on a
        // small input, and a layer too large for F(4×4) weights.
        let cases: [(Int, Int, Int, (Int, Int, Int, Int), Int, Int, WinogradPlan.Tile)] = [
            (4, 48, 56, (1, 1, 1, 1), 9, 7, .f2x3),
            (4, 48, 56, (1, 1, 1, 1), 18, 15, .f4x3),
            (2, 56, 64, (0, 0, 1, 1), 33, 34, .f4x3),
            (3, 64, 48, (1, 1, 1, 1), 10, 10, .f2x3),
            (2, 64, 64, (1, 1, 1, 1), 96, 96, .f4x3),
            (1, 336, 328, (1, 1, 1, 1), 16, 16, .f2x3),
            (3, 48, 48, (1, 1, 1, 1), 50, 46, .f4x3),  // 468 tiles: uneven per-thread passes
        ]
        // Narrow layers with enough tiles run whole passes per thread (when there are threads).
        let perThreadCases: Set<Int> = ThreadBudget.threads > 1 ? [2, 4, 6] : []
        for (i, c) in cases.enumerated() {
            let (n, cin, cout, pad, h, w, tile) = c
            let x = Reference.randomTensor([n, h, w, cin], seed: UInt64(300 + i))
            let weight = Reference.randomTensor([cout, cin, 3, 3], seed: UInt64(400 + i), scale: 0.2).data.array
            let bias = Reference.randomTensor([cout], seed: UInt64(500 + i)).data.array
            let kernel = Conv2dKernel(torchWeight: weight, bias: bias, inChannels: cin, outChannels: cout,
                                      kernelH: 3, kernelW: 3, stride: 1, padding: pad)
            let (oh, ow) = kernel.outputSize(height: h, width: w)
            XCTAssertEqual(kernel.winogradPlan(batch: n, outHeight: oh, outWidth: ow)?.tile, tile, "case \(i)")
            var ours = Tensor(shape: [0], data: [])
            let profile = OpProfile.measure { ours = kernel(x) }
            XCTAssertEqual(profile.kinds.map(\.0), [.convWinograd, perThreadCases.contains(i) ? .winogradPasses : .winogradGemm],
                           "case \(i) did not take the expected Winograd path")
            let ref = Reference.conv2d(x, weight: weight, bias: bias, cout: cout, kh: 3, kw: 3, stride: 1, pad: pad)
            XCTAssertEqual(ours.shape, ref.shape, "case \(i)")
            // F(2×2) rounds like im2col; F(4×4)'s larger transform coefficients cost about a digit.
            XCTAssertLessThan(maxRelativeError(ours, ref), tile == .f2x3 ? 1e-5 : 1e-4, "case \(i)")
        }
    }

    func testSmallInputsAndDisabledWinogradKeepIm2col() {
        let weight = Reference.randomTensor([64, 64, 3, 3], seed: 9, scale: 0.1).data.array
        let x = Reference.randomTensor([1, 8, 8, 64], seed: 10)  // 16 tiles: below the threshold
        let kernel = Conv2dKernel(torchWeight: weight, bias: nil, inChannels: 64, outChannels: 64,
                                  kernelH: 3, kernelW: 3, stride: 1, padding: (1, 1, 1, 1))
        XCTAssertEqual(OpProfile.measure { _ = kernel(x) }.kinds.map(\.0), [.convGemm])
        Conv2dKernel.winogradEnabled = false
        defer { Conv2dKernel.winogradEnabled = true }
        let plain = Conv2dKernel(torchWeight: weight, bias: nil, inChannels: 64, outChannels: 64,
                                 kernelH: 3, kernelW: 3, stride: 1, padding: (1, 1, 1, 1))
        let big = Reference.randomTensor([2, 32, 32, 64], seed: 11)
        XCTAssertEqual(OpProfile.measure { _ = plain(big) }.kinds.map(\.0), [.convGemm])
    }

    func testOpProfileSectionsAreExclusiveAndAddUp() {
        let lin = LinearKernel(weight: Reference.randomTensor([64, 64], seed: 12).data.array, bias: nil,
                               inFeatures: 64, outFeatures: 64)
        let x = Reference.randomTensor([2, 64, 64], seed: 13)
        let result = OpProfile.measure {
            _ = MultiHeadAttention.callAsFunction(q: lin(x), k: lin(x), v: lin(x), heads: 4)
        }
        XCTAssertEqual(Set(result.kinds.map(\.0)), [.linear, .attention])
        XCTAssertLessThanOrEqual(result.kinds.reduce(0) { $0 + $1.1 }, result.total * 1.0001)
        XCTAssertFalse(OpProfile.enabled)
    }

    func testLinearMatchesMatrixProduct() {
        let x = Reference.randomTensor([3, 5, 7], seed: 1)
        let w = Reference.randomTensor([4, 7], seed: 2).data.array
        let b = Reference.randomTensor([4], seed: 3).data.array
        let y = LinearKernel(weight: w, bias: b, inFeatures: 7, outFeatures: 4)(x)
        XCTAssertEqual(y.shape, [3, 5, 4])
        for r in 0..<15 { for o in 0..<4 {
            var acc = b[o]
            for i in 0..<7 { acc += x.data[r * 7 + i] * w[o * 7 + i] }
            XCTAssertEqual(y.data[r * 4 + o], acc, accuracy: 1e-5)
        } }
    }

    func testGroupNormMatchesDefinitionAndFusesActivation() {
        let (n, h, w, c, g) = (2, 5, 3, 12, 4)
        var x = Reference.randomTensor([n, h, w, c], seed: 4, scale: 3)
        for i in 0..<x.count { x.data[i] += 10 }  // a large mean stresses the two-pass variance
        let gamma = Reference.randomTensor([c], seed: 5).data.array
        let beta = Reference.randomTensor([c], seed: 6).data.array
        let kernel = GroupNormKernel(groups: g, channels: c, eps: 1e-5, gamma: gamma, beta: beta)
        let plain = kernel(x)
        let fused = kernel(x, activation: .silu)
        let cg = c / g
        for b in 0..<n { for gi in 0..<g {
            var values: [Double] = []
            for p in 0..<(h * w) { for j in 0..<cg { values.append(Double(x.data[(b * h * w + p) * c + gi * cg + j])) } }
            let mean = values.reduce(0, +) / Double(values.count)
            let variance = values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count)
            for p in 0..<(h * w) { for j in 0..<cg {
                let ch = gi * cg + j, idx = (b * h * w + p) * c + ch
                let expected = (Double(x.data[idx]) - mean) / (variance + 1e-5).squareRoot() * Double(gamma[ch]) + Double(beta[ch])
                XCTAssertEqual(Double(plain.data[idx]), expected, accuracy: 1e-4)
                XCTAssertEqual(Double(fused.data[idx]), expected / (1 + exp(-expected)), accuracy: 1e-4)
            } }
        } }
    }

    func testGroupNormGivesTheSameBitsWhetherTheBatchRunsInLanesOrOnOneThread() {
        // 3 images of 40×30 pixels: lanes split the batch 2 + 1 over two threads, and each
        // image's sums still split over the process-wide count (pixels ≥ 256 per part).
        let (n, h, w, c, g) = (3, 30, 40, 16, 4)
        let x = Reference.randomTensor([n, h, w, c], seed: 21, scale: 2)
        let gamma = Reference.randomTensor([c], seed: 22).data.array
        let beta = Reference.randomTensor([c], seed: 23).data.array
        let kernel = GroupNormKernel(groups: g, channels: c, eps: 1e-5, gamma: gamma, beta: beta)
        let serial = ThreadBudget.serially { kernel(x, activation: .silu) }
        let lanes = ThreadBudget.with(threads: 2) { kernel(x, activation: .silu) }
        XCTAssertEqual(serial.data.array, lanes.data.array)
        // And each image alone gives its rows of the batch's output.
        for b in 0..<n {
            let one = Tensor(shape: [1, h, w, c], data: Array(x.data.array[(b * h * w * c)..<((b + 1) * h * w * c)]))
            XCTAssertEqual(kernel(one, activation: .silu).data.array, Array(lanes.data.array[(b * h * w * c)..<((b + 1) * h * w * c)]))
        }
    }

    func testLayerNormAndRMSNormMatchDefinitions() {
        let x = Reference.randomTensor([4, 10], seed: 9, scale: 2)
        let gamma = Reference.randomTensor([10], seed: 10).data.array
        let beta = Reference.randomTensor([10], seed: 11).data.array
        let ln = LayerNormKernel(dim: 10, eps: 1e-5, gamma: gamma, beta: beta)(x)
        let rms = RMSNormKernel(dim: 10, eps: 1e-6, weight: gamma)(x)
        for r in 0..<4 {
            let row = (0..<10).map { Double(x.data[r * 10 + $0]) }
            let mean = row.reduce(0, +) / 10
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 10
            let ms = row.map { $0 * $0 }.reduce(0, +) / 10
            for i in 0..<10 {
                XCTAssertEqual(Double(ln.data[r * 10 + i]),
                               (row[i] - mean) / (variance + 1e-5).squareRoot() * Double(gamma[i]) + Double(beta[i]), accuracy: 1e-5)
                XCTAssertEqual(Double(rms.data[r * 10 + i]), row[i] / (ms + 1e-6).squareRoot() * Double(gamma[i]), accuracy: 1e-5)
            }
        }
    }

    func testActivationsMatchFoundationToFloatRounding() {
        var inputs: [Float] = stride(from: -30, through: 30, by: 0.37).map { Float($0) }
        inputs += [0, -0, 1e-8, -1e-8, 0.05, -0.05, 0.1, -0.1, 88, -88, 100, -100]
        let x = Tensor(shape: [inputs.count], data: inputs)
        func check(_ a: Activation, _ f: (Double) -> Double, _ tol: Double) {
            var y = x
            a.apply(&y)
            for (i, v) in inputs.enumerated() {
                let e = f(Double(v))
                XCTAssertEqual(Double(y.data[i]), e, accuracy: tol * (1 + abs(e)), "\(a) at \(v)")
            }
        }
        check(.silu, { $0 / (1 + exp(-$0)) }, 1e-6)
        check(.gelu, { (x: Double) -> Double in 0.5 * x * (1 + erf(x / 2.0.squareRoot())) }, 1e-6)
        check(.geluTanh, { (x: Double) -> Double in
            let inner: Double = 0.7978845608028654 * (x + 0.044715 * x * x * x)
            return 0.5 * x * (1 + tanh(inner))
        }, 1e-6)
        check(.tanh, { tanh($0) }, 1e-6)
        check(.relu, { max(0, $0) }, 0)
    }

    func testVectorExpIsAccurateAcrossTheRange() {
        for v in stride(from: -87.0, through: 88.0, by: 0.173) {
            let x = Float(v)  // compare at the float input, not the double it was rounded from
            let y = vexp(Vec8(repeating: x))[0]
            let e = exp(Double(x))
            XCTAssertEqual(Double(y), e, accuracy: 4e-7 * e, "exp(\(x))")
        }
        XCTAssertEqual(vexp(Vec8(repeating: -200))[0], 0, accuracy: 1e-37)
        // Out-of-range inputs clamp lane by lane (vclamp), so a large input stays finite.
        let mixed = vexp(Vec8(-200, 200, 0, 1, -1, 88.3, -87.3, 500))
        XCTAssertEqual(mixed[1], vexp(Vec8(repeating: 88.3))[0])
        XCTAssertTrue(mixed[1].isFinite)
        XCTAssertEqual(mixed[7], mixed[1])
        XCTAssertEqual(Double(mixed[2]), 1, accuracy: 1e-7)
        XCTAssertEqual(Double(mixed[3]), M_E, accuracy: 4e-7 * M_E)
    }

    func testGEGLUSplitsHiddenAndGate() {
        let x = Reference.randomTensor([3, 2 * 11], seed: 12, scale: 2)
        let y = geglu(x)
        XCTAssertEqual(y.shape, [3, 11])
        for r in 0..<3 { for j in 0..<11 {
            let hidden = Double(x.data[r * 22 + j]), gate = Double(x.data[r * 22 + 11 + j])
            XCTAssertEqual(Double(y.data[r * 11 + j]), hidden * 0.5 * gate * (1 + erf(gate / 2.0.squareRoot())), accuracy: 1e-5)
        } }
    }

    func testAttentionMatchesNaiveSoftmaxAttention() {
        // self, cross (Tk ≠ Tq, odd head size), masked keys, causal with a cached prefix.
        let configs: [(tq: Int, tk: Int, heads: Int, d: Int, bias: Bool, causal: Bool)] = [
            (9, 9, 2, 8, false, false), (7, 13, 3, 5, false, false), (6, 10, 1, 16, true, false), (5, 8, 4, 4, false, true),
            // long keys: query blocks of 16 rows, a partial last block, blocks spread over threads
            (40, 4100, 3, 8, true, false), (50, 4096, 2, 4, false, true),
        ]
        for (i, c) in configs.enumerated() {
            let q = Reference.randomTensor([2, c.tq, c.heads * c.d], seed: UInt64(20 + i))
            let k = Reference.randomTensor([2, c.tk, c.heads * c.d], seed: UInt64(30 + i))
            let v = Reference.randomTensor([2, c.tk, c.heads * c.d], seed: UInt64(40 + i))
            var bias: Tensor? = nil
            if c.bias {
                var b = Tensor(zeros: [2, c.tk])
                for j in (c.tk - 3)..<c.tk { b.data[j] = -10000; b.data[c.tk + j - 1] = -10000 }
                bias = b
            }
            let ours = MultiHeadAttention.callAsFunction(q: q, k: k, v: v, heads: c.heads, keyBias: bias, causal: c.causal)
            let ref = Reference.attention(q: q, k: k, v: v, heads: c.heads, keyBias: bias, causal: c.causal)
            XCTAssertLessThan(maxRelativeError(ours, ref), 1e-5, "config \(i)")
        }
    }

    func testFullyMaskedQueriesAttendToNothingAndGQASharesKeyHeads() {
        // Left padding under a causal mask leaves the first queries with no visible key:
        // PyTorch's SDPA returns zeros there.
        let q = Reference.randomTensor([1, 4, 8], seed: 50)
        let k = Reference.randomTensor([1, 4, 4], seed: 51)  // 1 kv head of size 4 shared by 2 query heads
        let v = Reference.randomTensor([1, 4, 4], seed: 52)
        let bias = Tensor(shape: [1, 4], data: [-.infinity, -.infinity, 0, 0])
        let out = MultiHeadAttention.callAsFunction(q: q, k: k, v: v, heads: 2, kvHeads: 1, keyBias: bias, causal: true)
        XCTAssertEqual(out.shape, [1, 4, 8])
        XCTAssertEqual(Array(out.data[0..<16]), [Float](repeating: 0, count: 16))
        // Rows 2 and 3 equal plain attention with the kv head repeated for both query heads.
        func repeatHead(_ x: Tensor) -> Tensor {
            var data: [Float] = []
            for t in 0..<4 {
                let head = Array(x.data[(t * 4)..<(t * 4 + 4)])
                data += head
                data += head
            }
            return Tensor(shape: [1, 4, 8], data: data)
        }
        let kRep = repeatHead(k), vRep = repeatHead(v)
        let ref = Reference.attention(q: q, k: kRep, v: vRep, heads: 2, keyBias: Tensor(shape: [1, 4], data: [-1e30, -1e30, 0, 0]), causal: true)
        for i in 16..<32 { XCTAssertEqual(out.data[i], ref.data[i], accuracy: 1e-5) }
    }

    func testNearestUpsampleFollowsPyTorchIndexRule() {
        let x = Reference.randomTensor([1, 3, 5, 2], seed: 13)
        for (oh, ow) in [(6, 10), (7, 11), (3, 5), (5, 8)] {
            let y = upsampleNearest(x, height: oh, width: ow)
            for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<2 {
                let iy = min(2, Int(floor(Double(oy) * (3.0 / Double(oh)))))
                let ix = min(4, Int(floor(Double(ox) * (5.0 / Double(ow)))))
                XCTAssertEqual(y.data[(oy * ow + ox) * 2 + ch], x.data[(iy * 5 + ix) * 2 + ch])
            } } }
        }
    }

    func testTimestepEmbeddingFollowsDiffusersFormula() {
        for (flip, shift, dim) in [(true, Float(0), 8), (false, Float(1), 9)] {
            let t: [Float] = [0, 1, 999, 261.5]
            let e = sinusoidalTimestepEmbedding(t, dim: dim, flipSinToCos: flip, downscaleFreqShift: shift)
            let half = dim / 2
            for (b, tv) in t.enumerated() {
                for i in 0..<half {
                    let freq = exp(-log(10000.0) * Double(i) / (Double(half) - Double(shift)))
                    let (s, c) = (sin(Double(tv) * freq), cos(Double(tv) * freq))
                    XCTAssertEqual(Double(e.data[b * dim + (flip ? half + i : i)]), s, accuracy: 2e-4)
                    XCTAssertEqual(Double(e.data[b * dim + (flip ? i : half + i)]), c, accuracy: 2e-4)
                }
                if dim % 2 == 1 { XCTAssertEqual(e.data[b * dim + dim - 1], 0) }
            }
        }
    }

    func testLayoutConversionsRoundTrip() {
        let nchw = Reference.randomTensor([2, 3, 4, 5], seed: 14)
        let nhwc = Tensor.fromNCHW(nchw)
        XCTAssertEqual(nhwc.shape, [2, 4, 5, 3])
        let nhwcIndex: Int = ((1 * 4 + 2) * 5 + 3) * 3 + 1  // n=1, y=2, x=3, c=1
        let nchwIndex: Int = ((1 * 3 + 1) * 4 + 2) * 5 + 3
        XCTAssertEqual(nhwc.data[nhwcIndex], nchw.data[nchwIndex])
        XCTAssertEqual(nhwc.toNCHW().data, nchw.data)
    }

    func testFlopCounterCountsGemmWork() {
        let x = Reference.randomTensor([6, 5], seed: 15)
        let lin = LinearKernel(weight: [Float](repeating: 0.1, count: 20), bias: nil, inFeatures: 5, outFeatures: 4)
        let flops = FlopCounter.count { _ = lin(x) }
        XCTAssertEqual(flops, 2 * 6 * 4 * 5)
        XCTAssertFalse(FlopCounter.enabled)
    }
}
