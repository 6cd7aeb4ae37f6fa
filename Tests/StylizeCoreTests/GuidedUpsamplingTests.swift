import XCTest
@testable import StylizeCore

/// The working-resolution path: area downscale, affine colour maps applied at the
/// frame's size, and the guided filter that fits them.
final class GuidedUpsamplingTests: XCTestCase {
    private func image(_ n: Int, _ h: Int, _ w: Int, seed: UInt64 = 1) -> Tensor {
        var state = seed
        func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        // Smooth content plus texture, like a photo.
        var t = Tensor(uninitialized: [n, h, w, 3])
        for b in 0..<n { for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            t.data[((b * h + y) * w + x) * 3 + c] = 0.6 * sin(Float(x + 2 * c) / 7 + Float(y) / 11 + Float(b)) + 0.3 * next()
        } } } }
        return t
    }

    func testAreaDownscaleAveragesTheCoveredPixels() {
        let x = image(1, 8, 12)
        let half = resizeArea(x, height: 4, width: 6)
        for y in 0..<4 { for xx in 0..<6 { for c in 0..<3 {
            let mean = [(0, 0), (0, 1), (1, 0), (1, 1)].map { x.data[((2 * y + $0.0) * 12 + 2 * xx + $0.1) * 3 + c] }.reduce(0, +) / 4
            XCTAssertEqual(half.data[(y * 6 + xx) * 3 + c], mean, accuracy: 1e-6)
        } } }
        // Fractional coverage (12 → 5): a constant stays constant, the mean is kept.
        var flat = Tensor(uninitialized: [1, 7, 12, 3])
        for i in 0..<flat.count { flat.data[i] = 0.25 }
        XCTAssertTrue(resizeArea(flat, height: 3, width: 5).data.allSatisfy { abs($0 - 0.25) < 1e-6 })
        let odd = resizeArea(x, height: 3, width: 5)
        let meanIn = x.data.array.reduce(0, +) / Float(x.count), meanOut = odd.data.array.reduce(0, +) / Float(odd.count)
        XCTAssertEqual(meanIn, meanOut, accuracy: 1e-5)
    }

    func testIdentityCoefficientsReproduceTheFrameAtAnySize() {
        let frame = image(2, 30, 40)
        var identity = Tensor(zeros: [2, 5, 7, 12])
        for p in 0..<(2 * 5 * 7) { for c in 0..<3 { identity.data[p * 12 + 4 * c + c] = 1 } }
        XCTAssertLessThan(applyAffineColor(identity, to: frame).maxAbsDifference(frame), 1e-6)
    }

    /// Coefficients varying across the map are interpolated with aligned pixel centres
    /// (OpenCV's INTER_LINEAR / align_corners=False) and clamped at the edges.
    func testCoefficientsAreInterpolatedBilinearlyWithAlignedCentres() {
        let (h, w, H, W) = (3, 4, 9, 16)
        var maps = Tensor(zeros: [1, h, w, 12])
        for y in 0..<h { for x in 0..<w { maps.data[(y * w + x) * 12 + 3] = Float(x) + 10 * Float(y) } }  // b_0
        let out = applyAffineColor(maps.scaled(0.01), to: Tensor(zeros: [1, H, W, 3]))
        for y in 0..<H { for x in 0..<W {
            let sx = max(0, min(Float(w - 1), (Float(x) + 0.5) * Float(w) / Float(W) - 0.5))
            let sy = max(0, min(Float(h - 1), (Float(y) + 0.5) * Float(h) / Float(H) - 0.5))
            XCTAssertEqual(out.data[(y * W + x) * 3], 0.01 * (sx + 10 * sy), accuracy: 1e-5, "(\(x), \(y))")
        } }
    }

    /// Random maps on a random frame, against the definition: every coefficient
    /// interpolated bilinearly, then out_c = Σ_i a_ci · in_i + b_c, clamped to [-1, 1].
    func testAffineMapsMatchTheirDefinitionPixelByPixel() {
        let (n, h, w, H, W) = (2, 5, 7, 15, 23)
        let maps = Reference.randomTensor([n, h, w, 12], seed: 31, scale: 0.8)
        let frame = image(n, H, W, seed: 32)
        let out = applyAffineColor(maps, to: frame)
        for b in 0..<n { for y in 0..<H { for x in 0..<W {
            let sx = max(0, min(Float(w - 1), (Float(x) + 0.5) * Float(w) / Float(W) - 0.5))
            let sy = max(0, min(Float(h - 1), (Float(y) + 0.5) * Float(h) / Float(H) - 0.5))
            let (x0, y0) = (Int(sx), Int(sy)), (x1, y1) = (min(Int(sx) + 1, w - 1), min(Int(sy) + 1, h - 1))
            let (fx, fy) = (sx - Float(x0), sy - Float(y0))
            func k(_ yy: Int, _ xx: Int, _ j: Int) -> Float { maps.data[((b * h + yy) * w + xx) * 12 + j] }
            for c in 0..<3 {
                var v: Float = 0
                for i in 0..<4 {
                    let j = 4 * c + i
                    let a = (1 - fy) * ((1 - fx) * k(y0, x0, j) + fx * k(y0, x1, j)) + fy * ((1 - fx) * k(y1, x0, j) + fx * k(y1, x1, j))
                    v += a * (i == 3 ? 1 : frame.data[((b * H + y) * W + x) * 3 + i])
                }
                XCTAssertEqual(out.data[((b * H + y) * W + x) * 3 + c], max(-1, min(1, v)), accuracy: 1e-5, "(\(b), \(x), \(y), \(c))")
            }
        } } }
    }

    /// A target that is a global affine colour transform of the guide: the filter recovers
    /// it, and applied to the full-resolution frame it gives that transform of the frame.
    func testGuidedFilterRecoversAnAffineColourTransform() {
        let frame = image(1, 48, 64, seed: 7)
        let guide = resizeArea(frame, height: 24, width: 32)
        let m: [[Float]] = [[0.5, 0.2, 0.1], [-0.1, 0.6, 0.2], [0.05, 0.1, 0.4]], t: [Float] = [0.1, -0.05, 0.2]
        func transform(_ x: Tensor) -> Tensor {
            var y = Tensor(uninitialized: x.shape)
            for p in 0..<(x.count / 3) { for c in 0..<3 {
                y.data[p * 3 + c] = (0..<3).map { m[c][$0] * x.data[p * 3 + $0] }.reduce(t[c], +)
            } }
            return y
        }
        let coefficients = guidedColorCoefficients(guide: guide, target: transform(guide), radius: 2, eps: 1e-6)
        XCTAssertLessThan(applyAffineColor(coefficients, to: frame).maxAbsDifference(transform(frame)), 2e-3)
        // The identity target gives the frame back: the detail the working size lost returns.
        let same = guidedColorCoefficients(guide: guide, target: guide, radius: 4, eps: 1e-3)
        func psnr(_ a: Tensor) -> Float {
            10 * log10(4 / (zip(a.data.array, frame.data.array).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / Float(frame.count)))
        }
        // Plain bilinear upsampling of the working-size frame, for comparison (A = 0, b = guide).
        var bilinear = Tensor(zeros: [1, 24, 32, 12])
        for p in 0..<(24 * 32) { for c in 0..<3 { bilinear.data[p * 12 + 4 * c + 3] = guide.data[p * 3 + c] } }
        let (guided, plain) = (psnr(applyAffineColor(same, to: frame)), psnr(applyAffineColor(bilinear, to: frame)))
        XCTAssertGreaterThan(guided, 30, "identity through the guided filter")
        XCTAssertGreaterThan(guided, plain + 8, "the guided filter restores detail bilinear upsampling loses (\(plain) dB)")
    }

    func testWarmCallsDrawEveryBufferFromThePool() {
        let frame = image(2, 60, 80)
        func run() { _ = applyAffineColor(guidedColorCoefficients(guide: resizeArea(frame, height: 30, width: 40),
                                                                 target: resizeArea(frame, height: 30, width: 40), radius: 4, eps: 1e-3),
                                          to: frame) }
        run()
        let before = TensorBufferPool.statistics
        run()
        XCTAssertEqual(TensorBufferPool.statistics.since(before).allocated, 0)
    }
}

private extension Tensor {
    func scaled(_ s: Float) -> Tensor {
        var y = self
        for i in 0..<y.count { y.data[i] *= s }
        return y
    }
}
