import Foundation
import XCTest
@testable import StylizeCore

/// Farnebäck flow against cv2.calcOpticalFlowFarneback on real frame pairs
/// (Fixtures/flow, made by tools/fixtures/make_flow_fixtures.py), and the warp and
/// occlusion helpers on cases whose answer is known exactly.
final class OpticalFlowTests: XCTestCase {
    /// FLOW_FIXTURES overrides the folder (e.g. a float32 set written with --f32 --out).
    static let fixtureFolder = ProcessInfo.processInfo.environment["FLOW_FIXTURES"]
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/flow").path

    func testFlowMatchesOpenCVOnRealFramePairs() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.fixtureFolder)
            .filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertGreaterThanOrEqual(files.count, 4, "flow fixtures missing in \(Self.fixtureFolder)")
        for name in files {
            let file = try FixtureFile(path: Self.fixtureFolder + "/" + name)
            let prev = try file.tensor("prev"), next = try file.tensor("next"), reference = try file.tensor("flow")
            let flags = Int(file.metadata["flags"] ?? "0")!
            let parameters = FarnebackParameters(
                pyramidScale: Double(file.metadata["pyr_scale"]!)!, levels: Int(file.metadata["levels"]!)!,
                windowSize: Int(file.metadata["winsize"]!)!, iterations: Int(file.metadata["iterations"]!)!,
                polyN: Int(file.metadata["poly_n"]!)!, polySigma: Double(file.metadata["poly_sigma"]!)!,
                gaussianWindow: flags & 256 != 0)
            let initial = flags & 4 != 0 ? try file.tensor("initial_flow") : nil
            let ours = FarnebackFlow(parameters).flow(from: prev, to: next, initialFlow: initial)
            XCTAssertEqual(ours.shape, reference.shape, name)
            let (mean, max) = endpointError(ours, reference)
            print(String(format: "flow parity %@ %dx%d: mean EPE %.2e px, max EPE %.2e px (reference |flow| max %.2f px)",
                         name, prev.shape[1], prev.shape[0], mean, max, maxLength(reference)))
            XCTAssertLessThanOrEqual(mean, 0.05, "\(name): mean endpoint error \(mean) px")
        }
    }

    /// For choosing a working resolution: flow computed at 1/2 and 1/4 size (block-mean
    /// shrink, vectors resized back and scaled) against OpenCV's full-resolution flow.
    /// Informational: it prints the errors (OpenCV itself, shrinking the same way, gives
    /// the same ones: 0.3–0.7 px mean at 1/2) and checks only that they stay bounded.
    func testReducedResolutionFlowAgainstFullResolutionOpenCV() throws {
        for name in ["vtest_256_step1", "vtest_256_step3", "megamind_256x192_gaussian_n7"] {
            let file = try FixtureFile(path: Self.fixtureFolder + "/" + name + ".safetensors")
            let prev = try file.tensor("prev"), next = try file.tensor("next"), reference = try file.tensor("flow")
            let flags = Int(file.metadata["flags"] ?? "0")!
            let flow = FarnebackFlow(FarnebackParameters(polyN: Int(file.metadata["poly_n"]!)!,
                                                         polySigma: Double(file.metadata["poly_sigma"]!)!,
                                                         gaussianWindow: flags & 256 != 0))
            let zero = Tensor(zeros: reference.shape)
            let (still, _) = endpointError(zero, reference)
            for factor in [2, 4] {
                let reduced = flow.flow(from: prev, to: next, downscale: factor)
                let (mean, max) = endpointError(reduced, reference)
                print(String(format: "reduced-resolution flow %@ 1/%d: mean EPE %.3f px, max %.2f px vs full-resolution OpenCV (zero flow: mean %.3f px)",
                             name, factor, mean, max, still))
                XCTAssertLessThan(mean, 2 * still + 0.5, "\(name) at 1/\(factor)")
            }
        }
    }

    func testGreyMatchesOpenCVsRGBToGray() throws {
        let file = try FixtureFile(path: Self.fixtureFolder + "/megamind_160x120_step1.safetensors")
        let rgb = try file.tensor("prev_rgb"), grey = try file.tensor("prev")
        // Bytes to engine floats the way ColorConversion.toRGB maps them.
        let frames = Tensor(shape: [1] + rgb.shape, data: rgb.data.map { $0 * (2 / 255) - 1 })
        let ours = FlowWarp.grey(frames)
        XCTAssertEqual(ours.shape, grey.shape)
        let differing = zip(ours.data, grey.data).filter { $0 != $1 }.count
        XCTAssertEqual(differing, 0, "\(differing) of \(grey.count) pixels differ from cv2.cvtColor(COLOR_RGB2GRAY)")
    }

    func testWarpByAWholePixelShiftReproducesTheShiftedFrame() {
        let (h, w, c) = (20, 24, 3)
        let prev = Reference.randomTensor([1, h, w, c], seed: 11)
        // cur(x, y) = prev(x − 3, y + 2): the content moved by (3, −2). The flow on cur's
        // grid back to prev is (−3, +2) everywhere.
        let flow = Tensor(shape: [h, w, 2], data: (0..<(h * w)).flatMap { _ in [Float(-3), 2] })
        let (warped, valid) = FlowWarp.warp(prev, flow: flow)
        for y in 0..<h {
            for x in 0..<w {
                let uncovered = x < 3 || y >= h - 2
                XCTAssertEqual(valid.data[y * w + x], uncovered ? 0 : 1, "valid at (\(x), \(y))")
                guard !uncovered else { continue }
                for ch in 0..<c {
                    XCTAssertEqual(warped.data[(y * w + x) * c + ch], prev.data[((y + 2) * w + x - 3) * c + ch], "(\(x), \(y))")
                }
            }
        }
    }

    func testWarpByASubpixelShiftIsExactOnABilinearImage() {
        let (h, w) = (18, 22)
        // Bilinear interpolation reproduces a + b·x + c·y + d·x·y exactly, so the warped
        // image must equal the function at the displaced positions.
        func f(_ x: Float, _ y: Float, _ ch: Int) -> Float {
            let k = Float(ch + 1)
            return 0.1 * k + 0.03 * x - 0.02 * k * y + 0.001 * x * y
        }
        let prev = Tensor(shape: [1, h, w, 2], data: (0..<(h * w * 2)).map { i in
            f(Float((i / 2) % w), Float(i / 2 / w), i % 2)
        })
        let (dx, dy): (Float, Float) = (1.25, -0.75)
        let flow = Tensor(shape: [h, w, 2], data: (0..<(h * w)).flatMap { _ in [dx, dy] })
        let (warped, valid) = FlowWarp.warp(prev, flow: flow)
        for y in 0..<h {
            for x in 0..<w {
                let inside = Float(x) + dx <= Float(w - 1) && Float(y) + dy >= 0
                XCTAssertEqual(valid.data[y * w + x], inside ? 1 : 0, "valid at (\(x), \(y))")
                XCTAssertEqual(inside, x <= w - 3 && y >= 1)
                guard inside else { continue }
                for ch in 0..<2 {
                    XCTAssertEqual(warped.data[(y * w + x) * 2 + ch], f(Float(x) + dx, Float(y) + dy, ch), accuracy: 1e-5)
                }
            }
        }
    }

    func testWarpMatchesABilinearReferenceForRandomFlows() {
        // Vectors up to ±6 px on a 37×21 frame (many samples fall outside), one NaN, a
        // batch of two, RGB (the vector path) and one channel (the scalar path).
        let (h, w) = (21, 37)
        var flow = Reference.randomTensor([h, w, 2], seed: 3, scale: 6)
        flow.data[2 * (10 * w + 12)] = .nan
        for c in [3, 1] {
            let image = Reference.randomTensor([2, h, w, c], seed: 4)
            let (warped, valid) = FlowWarp.warp(image, flow: flow)
            for y in 0..<h {
                for x in 0..<w {
                    let p = y * w + x
                    let sx = Double(x) + Double(flow.data[2 * p]), sy = Double(y) + Double(flow.data[2 * p + 1])
                    let inside = sx >= 0 && sx <= Double(w - 1) && sy >= 0 && sy <= Double(h - 1)
                    XCTAssertEqual(valid.data[p], inside ? 1 : 0, "valid at (\(x), \(y))")
                    // Outside, the nearest edge pixel's value (NaN counts as 0).
                    let cx = sx.isNaN ? 0 : min(max(sx, 0), Double(w - 1)), cy = sy.isNaN ? 0 : min(max(sy, 0), Double(h - 1))
                    let (x0, y0) = (Int(cx.rounded(.down)), Int(cy.rounded(.down)))
                    let (x1, y1) = (min(x0 + 1, w - 1), min(y0 + 1, h - 1))
                    let (ax, ay) = (cx - Double(x0), cy - Double(y0))
                    for b in 0..<2 {
                        for ch in 0..<c {
                            func v(_ xx: Int, _ yy: Int) -> Double { Double(image.data[((b * h + yy) * w + xx) * c + ch]) }
                            let expected = (1 - ay) * ((1 - ax) * v(x0, y0) + ax * v(x1, y0)) + ay * ((1 - ax) * v(x0, y1) + ax * v(x1, y1))
                            XCTAssertEqual(Double(warped.data[((b * h + y) * w + x) * c + ch]), expected, accuracy: 1e-5,
                                           "c \(c), frame \(b), (\(x), \(y))")
                        }
                    }
                }
            }
        }
    }

    /// The one-pass blend against its definition: `warp`, then frame i moves α toward the
    /// warped image where the sample is inside and the coarse trust cell (y·th/H, x·tw/W)
    /// is 1. Same values to the bit (same taps, same arithmetic), for an explicit source
    /// and for frame i − 1 of the output itself, on a width that leaves a scalar tail.
    func testBlendWarpedIsWarpThenAMaskedMix() {
        let (n, h, w, alpha): (Int, Int, Int, Float) = (3, 23, 45, 0.7)
        var flow = Reference.randomTensor([h, w, 2], seed: 5, scale: 5)
        flow.data[2 * (11 * w + 9)] = .nan
        // a 9×17 trust map of which the top-left 7×13 region is used
        var trust = Tensor(zeros: [9, 17])
        let coin = Reference.randomTensor([9 * 17], seed: 6)
        for i in 0..<trust.count { trust.data[i] = coin.data[i] > 0 ? 1 : 0 }
        let (th, tw) = (7, 13)
        let frames = Reference.randomTensor([n, h, w, 3], seed: 7)
        let source = Reference.randomTensor([1, h, w, 3], seed: 8)
        for (i, explicit) in [(0, true), (2, false)] {
            var fused = frames
            FlowWarp.blendWarped(&fused, frame: i, toward: explicit ? source : nil, flow: flow,
                                 trust: trust, trustRegion: (th, tw), alpha: alpha)
            let (warped, valid) = FlowWarp.warp(explicit ? source : frames.batchItems([i - 1]), flow: flow)
            var expected = frames
            var blended = 0
            for y in 0..<h {
                for x in 0..<w where valid.data[y * w + x] > 0.5 && trust.data[(y * th / h) * 17 + x * tw / w] > 0.5 {
                    blended += 1
                    for c in 0..<3 {
                        let (o, p) = (((i * h + y) * w + x) * 3 + c, (y * w + x) * 3 + c)
                        expected.data[o] += alpha * (warped.data[p] - expected.data[o])
                    }
                }
            }
            XCTAssertEqual(fused.data.array, expected.data.array, "frame \(i), explicit source \(explicit)")
            XCTAssertGreaterThan(blended, h * w / 8, "a fair share of pixels blended")
            XCTAssertLessThan(blended, h * w * 7 / 8, "and a fair share left alone")
        }
    }

    func testForwardBackwardCheckMarksTheDisoccludedStrip() {
        // A 10 px square moves 4 px right over a still background. On the current frame,
        // the strip it uncovered (x 10..<14) shows background that prev hid: its backward
        // flow is 0, but the forward flow found there in prev is the square's (4, 0).
        let (h, w) = (32, 40)
        let square = (x: 10..<20, y: 8..<18)
        var forward = [Float](repeating: 0, count: h * w * 2)
        var backward = [Float](repeating: 0, count: h * w * 2)
        for y in square.y {
            for x in square.x { forward[(y * w + x) * 2] = 4 }
            for x in (square.x.lowerBound + 4)..<(square.x.upperBound + 4) { backward[(y * w + x) * 2] = -4 }
        }
        // One backward vector leaves the frame: nothing to check it against.
        backward[(30 * w + 1) * 2] = -3
        let occluded = FlowWarp.occlusion(forward: Tensor(shape: [h, w, 2], data: forward),
                                          backward: Tensor(shape: [h, w, 2], data: backward))
        XCTAssertEqual(occluded.shape, [1, h, w, 1])
        for y in 0..<h {
            for x in 0..<w {
                let expected = (square.y.contains(y) && (10..<14).contains(x)) || (x == 1 && y == 30)
                XCTAssertEqual(occluded.data[y * w + x], expected ? 1 : 0, "(\(x), \(y))")
            }
        }
    }

    func testTheToleranceGrowsWithTheMotion() {
        // |f + b|² = 1 is inconsistent for small motion (> 0.01·(0 + 1) + 0.5) but within
        // tolerance for a 10 px motion (0.01·(100 + 81) + 0.5 = 2.31).
        func occluded(_ f: (Float, Float), _ b: (Float, Float)) -> Float {
            let fw = Tensor(shape: [3, 3, 2], data: (0..<9).flatMap { _ in [f.0, f.1] })
            let bw = Tensor(shape: [3, 3, 2], data: (0..<9).flatMap { _ in [b.0, b.1] })
            return FlowWarp.occlusion(forward: fw, backward: bw).data[4]
        }
        XCTAssertEqual(occluded((0, 0), (1, 0)), 1)
        XCTAssertEqual(occluded((0.5, 0), (-0.5, 0)), 0)
        // Only the middle pixel's read stays inside a 3×3 frame, at ±1 px of motion.
        XCTAssertEqual(occluded((1, 0), (0, 0)), 1)
        XCTAssertEqual(occluded((1, 0.5), (-0.5, 0)), 0)  // |f + b|² = 0.5 ≤ 0.01·2.5 + 0.5
    }

    func testAWarmCallAllocatesNoTensorBuffers() {
        let (h, w) = (72, 88)
        let prev = Tensor(shape: [h, w], data: (0..<(h * w)).map { i in Float((i * 7919) % 251) })
        let next = Tensor(shape: [h, w], data: (0..<(h * w)).map { i in Float(((i + 3) * 7919) % 251) })
        let frame = Reference.randomTensor([1, h, w, 3], seed: 5)
        for parameters in [FarnebackParameters(), FarnebackParameters(polyN: 7, polySigma: 1.5, gaussianWindow: true)] {
            let flow = FarnebackFlow(parameters)
            func all() {
                let f = flow.flow(from: prev, to: next)
                _ = flow.flow(from: prev, to: next, initialFlow: f)
                _ = FlowWarp.warp(frame, flow: f)
                _ = FlowWarp.occlusion(forward: f, backward: f)
                _ = FlowWarp.grey(frame)
            }
            all()
            let before = TensorBufferPool.statistics
            all()
            let used = TensorBufferPool.statistics.since(before)
            XCTAssertEqual(used.allocated, 0, "a warm call allocated \(used.allocatedBytes) bytes of tensor buffers")
            XCTAssertGreaterThan(used.reused, 0)
        }
    }

    func testHalvingAndBlurHelpersMatchOpenCVsKernelsAndSizes() {
        // cvRound ties to even: it decides level sizes and blur kernel sizes.
        XCTAssertEqual(PlaneResampling.cvRound(2.5), 2)
        XCTAssertEqual(PlaneResampling.cvRound(56.5), 56)
        XCTAssertEqual(PlaneResampling.cvRound(7.5), 8)
        XCTAssertEqual(FarnebackFlow.levelBlur(scale: 1).size, 3)
        XCTAssertEqual(FarnebackFlow.levelBlur(scale: 0.5).size, 3)
        XCTAssertEqual(FarnebackFlow.levelBlur(scale: 0.25).size, 9)
        XCTAssertEqual(FarnebackFlow.levelBlur(scale: 0.125).size, 19)
        // cv2.getGaussianKernel(9, 1.5, ktype=CV_32F)[:3]
        let k = PlaneResampling.gaussianKernel(size: 9, sigma: 1.5)
        XCTAssertEqual(k[0], 0.00761442, accuracy: 1e-8)
        XCTAssertEqual(k[1], 0.03607497, accuracy: 1e-8)
        XCTAssertEqual(k[2], 0.10958608, accuracy: 1e-8)
        XCTAssertEqual(FarnebackFlow().levelCount(width: 256, height: 256), 3)
        XCTAssertEqual(FarnebackFlow().levelCount(width: 160, height: 120), 1)
        XCTAssertEqual(FarnebackFlow().levelCount(width: 64, height: 64), 1)
    }
}

/// Mean and largest |ours − reference| over pixels of two [H, W, 2] flows.
private func endpointError(_ a: Tensor, _ b: Tensor) -> (mean: Double, max: Double) {
    var (sum, largest) = (0.0, 0.0)
    let n = a.count / 2
    for p in 0..<n {
        let (ex, ey) = (Double(a.data[2 * p] - b.data[2 * p]), Double(a.data[2 * p + 1] - b.data[2 * p + 1]))
        let e = (ex * ex + ey * ey).squareRoot()
        sum += e
        largest = Swift.max(largest, e)
    }
    return (sum / Double(n), largest)
}

private func maxLength(_ flow: Tensor) -> Double {
    var m = 0.0
    for p in 0..<(flow.count / 2) {
        m = max(m, Double(flow.data[2 * p] * flow.data[2 * p] + flow.data[2 * p + 1] * flow.data[2 * p + 1]).squareRoot())
    }
    return m
}

/// A safetensors file read whole (StylizeCore's tests cannot reach StylizeModels'
/// reader): U8, F16 and F32 tensors as Float, and the string metadata.
struct FixtureFile {
    let metadata: [String: String]
    private let entries: [String: (dtype: String, shape: [Int], range: Range<Int>)]
    private let bytes: Data

    init(path: String) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerLength = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        guard let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any] else {
            throw CocoaError(.fileReadCorruptFile)
        }
        var entries: [String: (String, [Int], Range<Int>)] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String, let shape = e["shape"] as? [Int],
                  let offsets = e["data_offsets"] as? [Int] else { throw CocoaError(.fileReadCorruptFile) }
            entries[name] = (dtype, shape, (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
        }
        self.metadata = header["__metadata__"] as? [String: String] ?? [:]
        self.entries = entries
        self.bytes = data
    }

    func tensor(_ name: String) throws -> Tensor {
        guard let e = entries[name] else { throw CocoaError(.fileReadNoSuchFile, userInfo: ["tensor": name]) }
        let raw = bytes.subdata(in: e.range)
        let values: [Float] = raw.withUnsafeBytes { p in
            switch e.dtype {
            case "U8": return p.bindMemory(to: UInt8.self).map { Float($0) }
            case "F16": return (0..<(raw.count / 2)).map { Float(Float16(bitPattern: p.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
            case "F32": return (0..<(raw.count / 4)).map { p.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) }
            default: return []
            }
        }
        guard values.count == e.shape.reduce(1, *) else { throw CocoaError(.fileReadCorruptFile, userInfo: ["tensor": name]) }
        return Tensor(shape: e.shape, data: values)
    }
}
