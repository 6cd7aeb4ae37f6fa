import Foundation
import StylizeModels

/// `bench flow`: Farnebäck optical flow (the parameters of the video style-transfer
/// work) on a synthetic textured pair, at --size and at its half and quarter, plus the
/// backward warp of an RGB frame at --size. No model is needed.
enum FlowBench {
    /// A frame takes about this long on the reference machine (2 cores, 256², batch 1);
    /// the flow's budget is 5 % of it.
    static let frameSeconds = 0.020

    static func run(width: Int, height: Int, repeats: Int) {
        let flow = FarnebackFlow()
        let p = flow.parameters
        print("component     flow  (Farnebäck: pyr_scale \(p.pyramidScale), levels \(p.levels), winsize \(p.windowSize), "
              + "iterations \(p.iterations), poly_n \(p.polyN), poly_sigma \(p.polySigma), box window)")
        print("threads       \(ThreadBudget.threads)")
        let runs = max(repeats, 30)
        var sizes: [(Int, Int)] = []
        for d in [1, 2, 4] where height / d >= 8 && width / d >= 8 { sizes.append((height / d, width / d)) }
        for (h, w) in sizes {
            let (prev, next) = pair(height: h, width: w)
            let t = medianTime(runs) { _ = flow.flow(from: prev, to: next) }
            print(String(format: "flow %4dx%-4d %.3f ms median (min %.3f, max %.3f, %d runs); %.1f%% of a %.0f ms frame",
                         h, w, t.median * 1e3, t.min * 1e3, t.max * 1e3, runs, 100 * t.median / frameSeconds, frameSeconds * 1e3))
            // In a video the previous frame's expansion is kept: a new frame costs one
            // expansion and the solve.
            let kept = flow.expansion(of: prev)
            let v = medianTime(runs) { _ = flow.flow(from: kept, to: flow.expansion(of: next)) }
            print(String(format: "  per frame   %.3f ms median (min %.3f) with the previous frame's expansion kept; %.1f%%",
                         v.median * 1e3, v.min * 1e3, 100 * v.median / frameSeconds))
        }
        let (prev, next) = pair(height: height, width: width)
        let field = flow.flow(from: prev, to: next)
        let frame = Tensor(shape: [1, height, width, 3], data: (0..<(height * width * 3)).map { Float($0 % 255) / 127.5 - 1 })
        let warp = medianTime(runs) { _ = FlowWarp.warp(frame, flow: field) }
        print(String(format: "warp %4dx%-4d %.3f ms median (RGB, bilinear, with the validity mask)", height, width, warp.median * 1e3))
        let grey = medianTime(runs) { _ = FlowWarp.grey(frame) }
        print(String(format: "grey %4dx%-4d %.3f ms median", height, width, grey.median * 1e3))
        print(String(format: "sgemm peak    %.1f GFLOP/s (OpenBLAS, 1536^3, same run)", BLAS.measureSgemmPeak()))
    }

    /// A smooth texture with detail at several scales, and the same texture moved by
    /// (1.3, −0.7) px: the flow's cost depends on the sizes, hardly on the content.
    static func pair(height h: Int, width w: Int) -> (Tensor, Tensor) {
        func texture(_ x: Float, _ y: Float) -> Float {
            let s = Float(256) / Float(max(h, w))
            let (u, v) = (x * s, y * s)
            let a = sin(u * 0.11) * cos(v * 0.07) + 0.5 * sin(u * 0.31 + v * 0.23) + 0.25 * cos(u * 0.9 - v * 0.7)
            return (127.5 + 90 * a / 1.75).rounded()
        }
        let prev = Tensor(shape: [h, w], data: (0..<(h * w)).map { texture(Float($0 % w), Float($0 / w)) })
        let next = Tensor(shape: [h, w], data: (0..<(h * w)).map { texture(Float($0 % w) - 1.3, Float($0 / w) + 0.7) })
        return (prev, next)
    }

    static func medianTime(_ runs: Int, _ body: () -> Void) -> (median: Double, min: Double, max: Double) {
        body()  // warm-up: the pool's blocks, the threads
        var times: [Double] = []
        for _ in 0..<runs {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.sort()
        return (times[times.count / 2], times.first!, times.last!)
    }
}
