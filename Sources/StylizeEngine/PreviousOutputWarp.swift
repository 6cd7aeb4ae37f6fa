import StylizeCore

/// The temporal adapter's conditioning images: the previous batch's newest output,
/// backward-warped by Farnebäck flow onto each frame of the next batch, with pixels the
/// flow cannot vouch for (occluded, or coming from outside the frame) taken from the frame
/// itself (docs/ARCHITECTURE.md#temporal-adapter).
///
/// Frame i of a batch is warped with the flow from frame i to the previous batch's last
/// input, so one kept expansion (that input's) serves the whole batch. The images live at
/// the padded working size the denoiser sees; the flows are computed on the grey frames
/// shrunk by `flowDownscale` (a shorter side of about `flowSide` pixels), which keeps
/// their cost a few percent of a frame's at any size. Touched only by the batch (worker) thread.
struct PreviousOutputWarp {
    private let flow = FarnebackFlow()
    /// The shorter side flows are computed at (the whole frame below twice that).
    static let flowSide = 64

    /// Rows per thread of the per-pixel passes: below ~16 K pixels a second thread costs
    /// more to wake than it saves.
    private static func rowsPerThread(width: Int) -> Int { max(1, 16384 / max(1, width)) }

    /// The integer shrink factor of the flow's images for a frame of this size.
    static func flowDownscale(height: Int, width: Int) -> Int { max(1, min(height, width) / flowSide) }

    /// The previous batch's newest input, output (RGB) and decoder output (RGB or the
    /// affine head's maps), padded; nil at a stream's start.
    private var previousInput: Tensor?
    private var previousOutput: Tensor?
    private var previousDecoded: Tensor?
    /// The previous batch's newest output at the frame's size (after its blend), when
    /// the output blend runs (an affine head); nil otherwise.
    private var previousFrame: Tensor?
    /// This batch, from `images(for:)`, for `blend`: each frame's flows to and from the
    /// previous batch's newest input on the flow's grid, and frame 0's at the padded size.
    private var anchorFlows: [AnchorFlow] = []
    private var firstFlow: TrustedFlow?
    /// This batch's flows from frame i to frame i − 1 (index i − 1) at the padded size,
    /// made by the first blend that needs them: an affine head's two blends share them.
    private var stepFlows: [TrustedFlow] = []

    /// A backward flow at the padded size and where it may be used (1) or not (0).
    struct TrustedFlow {
        let flow: Tensor
        let trusted: Tensor
    }

    /// One frame's flows with the anchor (the previous batch's newest input) on the flow's
    /// grid: `backward` frame → anchor, `forward` anchor → frame, and `occluded` ([1, h, w, 1],
    /// on the frame's grid) where the two disagree.
    struct AnchorFlow {
        let backward: Tensor
        let forward: Tensor
        let occluded: Tensor
    }

    mutating func reset() {
        previousInput = nil
        previousOutput = nil
        previousDecoded = nil
        previousFrame = nil
        anchorFlows = []
        firstFlow = nil
        stepFlows.removeAll(keepingCapacity: true)
    }

    /// Keeps a batch's newest input (padded, [1, H, W, 3]), its RGB output and its decoder
    /// output (working size, replicate-padded to the input's size here).
    mutating func keep(input: Tensor, output: Tensor, decoded: Tensor, frame: Tensor? = nil) {
        previousInput = input
        previousOutput = Self.padded(output, height: input.h, width: input.w)
        previousDecoded = Self.padded(decoded, height: input.h, width: input.w)
        previousFrame = frame
        anchorFlows = []
        firstFlow = nil
        stepFlows.removeAll(keepingCapacity: true)
    }

    private static func padded(_ t: Tensor, height: Int, width: Int) -> Tensor {
        t.h == height && t.w == width ? t : padReplicate(t, height: height, width: width)
    }

    /// Whether `keep` has something for frames of this padded size (a stream's first batch,
    /// or one after a size change, has not).
    func hasPrevious(height: Int, width: Int) -> Bool {
        previousInput.map { $0.h == height && $0.w == width } ?? false
    }

    /// Frame `index`'s grey image on the flow's grid.
    private func flowImage(_ t: Tensor, _ index: Int, factor: Int) -> Tensor {
        let g = FlowWarp.grey(t, index: index)
        return factor == 1 ? g : FarnebackFlow.shrink(g, by: factor)
    }

    /// The flows between `current` and `anchor` (their expansions) on the flow's grid.
    private func anchorFlow(from current: FarnebackFlow.Expansion, to anchor: FarnebackFlow.Expansion) -> AnchorFlow {
        let backward = flow.flow(from: current, to: anchor)
        let forward = flow.flow(from: anchor, to: current)
        return AnchorFlow(backward: backward, forward: forward,
                          occluded: FlowWarp.occlusion(forward: forward, backward: backward))
    }

    /// The flow from frame i to frame i − 1 of a batch, through the anchor both were
    /// matched with: x → a = x + B_i(x) → a + F_{i−1}(a), so C(x) = B_i(x) + F_{i−1}(x + B_i(x)).
    /// Occluded where frame i's own test fails, where the path leaves the frame, or where
    /// frame i − 1's test fails at the pixel it lands on. Two Farnebäck flows per frame
    /// fewer than matching the frames directly, at the price of chaining two estimates.
    private static func composed(_ current: AnchorFlow, _ previous: AnchorFlow) -> (backward: Tensor, occluded: Tensor) {
        let (sh, sw) = (current.backward.shape[0], current.backward.shape[1])
        let carried = FlowWarp.warp(previous.forward.reshaped([1, sh, sw, 2]), flow: current.backward).warped
        var backward = Tensor(uninitialized: [sh, sw, 2])
        var occluded = Tensor(uninitialized: [1, sh, sw, 1])
        current.backward.data.withUnsafeBufferPointer { b in
        carried.data.withUnsafeBufferPointer { f in
        current.occluded.data.withUnsafeBufferPointer { oc in
        previous.occluded.data.withUnsafeBufferPointer { op in
        backward.data.withUnsafeMutableBufferPointer { c in
        occluded.data.withUnsafeMutableBufferPointer { o in
            for y in 0..<sh {
                for x in 0..<sw {
                    let p = y * sw + x
                    let (cx, cy) = (b[2 * p] + f[2 * p], b[2 * p + 1] + f[2 * p + 1])
                    (c[2 * p], c[2 * p + 1]) = (cx, cy)
                    let (tx, ty) = (Float(x) + cx, Float(y) + cy)
                    let inside = tx >= 0 && tx <= Float(sw - 1) && ty >= 0 && ty <= Float(sh - 1)
                    let landed = inside ? Int(ty.rounded()) * sw + Int(tx.rounded()) : 0
                    o[p] = oc[p] < 0.5 && inside && op[landed] < 0.5 ? 0 : 1
                }
            }
        }}}}}}
        return (backward, occluded)
    }

    /// A backward flow on the flow's grid (`factor` times smaller) as a flow at the padded
    /// size height × width, trusted where the grid's occlusion test passed and the source
    /// lies inside the frame.
    private static func trusted(backward: Tensor, occluded: Tensor, factor: Int, height h: Int, width w: Int) -> TrustedFlow {
        let (sh, sw) = (backward.shape[0], backward.shape[1])
        let full = factor == 1 ? backward : FarnebackFlow.enlarge(backward, height: h, width: w)
        var trusted = Tensor(uninitialized: [h, w])
        full.data.withUnsafeBufferPointer { f in
            occluded.data.withUnsafeBufferPointer { occ in
                trusted.data.withUnsafeMutableBufferPointer { t in
                    let (f, occ, t) = (f.baseAddress!, occ.baseAddress!, t.baseAddress!)
                    parallelRanges(h, minPerThread: Self.rowsPerThread(width: w)) { rows in
                        for y in rows {
                            let row = min(sh - 1, y / factor) * sw
                            for x in 0..<w {
                                let p = y * w + x
                                let (sx, sy) = (Float(x) + f[2 * p], Float(y) + f[2 * p + 1])
                                let inside = sx >= 0 && sx <= Float(w - 1) && sy >= 0 && sy <= Float(h - 1)
                                t[p] = inside && occ[row + min(sw - 1, x / factor)] < 0.5 ? 1 : 0
                            }
                        }
                    }
                }
            }
        }
        return TrustedFlow(flow: full, trusted: trusted)
    }

    /// Conditioning images for `frames` (padded, NHWC [-1, 1]): per frame, the warped
    /// previous output where the flow is trusted, the frame elsewhere. Without a previous
    /// output of this size, the frames themselves.
    mutating func images(for frames: Tensor) -> Tensor {
        anchorFlows = []
        firstFlow = nil
        stepFlows.removeAll(keepingCapacity: true)
        guard let input = previousInput, let output = previousOutput,
              hasPrevious(height: frames.h, width: frames.w) else { return frames }
        let factor = Self.flowDownscale(height: frames.h, width: frames.w)
        let previous = flow.expansion(of: flowImage(input, 0, factor: factor))
        let (h, w, c) = (frames.h, frames.w, frames.c)
        let plane = h * w * c
        var out = Tensor(uninitialized: frames.shape)
        for i in 0..<frames.n {
            let current = flow.expansion(of: flowImage(frames, i, factor: factor))
            let anchored = anchorFlow(from: current, to: previous)
            let t = Self.trusted(backward: anchored.backward, occluded: anchored.occluded, factor: factor, height: h, width: w)
            let warped = FlowWarp.warp(output, flow: t.flow).warped
            out.data.withUnsafeMutableBufferPointer { o in
                frames.data.withUnsafeBufferPointer { f in
                    warped.data.withUnsafeBufferPointer { wp in
                        t.trusted.data.withUnsafeBufferPointer { ok in
                            let dst = o.baseAddress! + i * plane
                            let (src, wp, ok) = (f.baseAddress! + i * plane, wp.baseAddress!, ok.baseAddress!)
                            parallelRanges(h, minPerThread: Self.rowsPerThread(width: w)) { rows in
                                for p in (rows.lowerBound * w)..<(rows.upperBound * w) {
                                    let from = ok[p] > 0.5 ? wp : src
                                    for k in 0..<c { dst[p * c + k] = from[p * c + k] }
                                }
                            }
                        }
                    }
                }
            }
            anchorFlows.append(anchored)
            if i == 0 { firstFlow = t }
        }
        return out
    }

    /// The temporal blend of this batch's decoder output (`decoded`, working size
    /// [B, h, w, C] within the padded size; RGB or the affine head's maps): frame by frame,
    /// where the flow is trusted, decoded_i = α·warp(decoded_{i−1}) + (1 − α)·decoded_i,
    /// decoded_{−1} being the previous batch's newest (already blended), so the blend is a
    /// recursive filter along the motion. Needs this batch's `images(for:)`; without them
    /// (a stream's first batch, a batch that did not refresh) `decoded` is left alone.
    mutating func blend(_ decoded: inout Tensor, alpha: Float) {
        guard alpha > 0, let previous = previousDecoded, let first = firstFlow, anchorFlows.count == decoded.n,
              previous.c == decoded.c, decoded.h <= previous.h, decoded.w <= previous.w else { return }
        let (ph, pw) = (previous.h, previous.w)
        let factor = Self.flowDownscale(height: ph, width: pw)
        for i in 0..<decoded.n {
            let t = i == 0 ? first : stepFlow(i, factor: factor, height: ph, width: pw)
            let source = i == 0 ? previous : Self.padded(decoded.batchItems([i - 1]), height: ph, width: pw)
            Self.mix(&decoded, frame: i, toward: FlowWarp.warp(source, flow: t.flow).warped, where: t.trusted, alpha: alpha)
        }
    }

    /// Frame i of `out` ([B, h, w, C]) moves `alpha` of the way to `warped` where
    /// `trusted` ([H, W] with its warped image [1, H, W, C] at the padded size, H ≥ h, W ≥ w)
    /// says so.
    private static func mix(_ out: inout Tensor, frame i: Int, toward warped: Tensor, where trusted: Tensor, alpha: Float) {
        let (h, w, c) = (out.h, out.w, out.c)
        let stride = trusted.shape[1]
        out.data.withUnsafeMutableBufferPointer { d in
            warped.data.withUnsafeBufferPointer { wp in
                trusted.data.withUnsafeBufferPointer { v in
                    let dst = d.baseAddress! + i * h * w * c
                    let (wp, v) = (wp.baseAddress!, v.baseAddress!)
                    parallelRanges(h, minPerThread: Self.rowsPerThread(width: w)) { rows in
                        for y in rows {
                            for x in 0..<w where v[y * stride + x] > 0.5 {
                                let (o, p) = ((y * w + x) * c, (y * stride + x) * c)
                                for k in 0..<c { dst[o + k] += alpha * (wp[p + k] - dst[o + k]) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Frame i's flow to frame i − 1 of this batch (i ≥ 1) at the padded size, through the anchor.
    private mutating func stepFlow(_ i: Int, factor: Int, height: Int, width: Int) -> TrustedFlow {
        while stepFlows.count < i {
            let j = stepFlows.count + 1
            let c = Self.composed(anchorFlows[j], anchorFlows[j - 1])
            stepFlows.append(Self.trusted(backward: c.backward, occluded: c.occluded, factor: factor, height: height, width: width))
        }
        return stepFlows[i - 1]
    }

    /// The temporal blend of the batch's output at the frame's size ([B, H, W, 3]), for
    /// an affine head: the same recursive filter along the motion as `blend`, with the
    /// working-size flows (the model ran at workingHeight × workingWidth, within the padded
    /// size the flows were found at) enlarged to the frame, and each frame pixel trusted
    /// where its working pixel was and its source lies inside the frame. Frame −1 is the
    /// previous batch's newest output, as blended. Without this batch's flows or a
    /// previous output of this size, `output` is left alone.
    mutating func blend(output: inout Tensor, alpha: Float, workingHeight h: Int, workingWidth w: Int) {
        guard alpha > 0, let previous = previousFrame, let first = firstFlow, let padded = previousInput,
              anchorFlows.count == output.n, previous.h == output.h, previous.w == output.w,
              h <= padded.h, w <= padded.w else { return }
        let (ph, pw) = (padded.h, padded.w)
        let factor = Self.flowDownscale(height: ph, width: pw)
        for i in 0..<output.n {
            let t = i == 0 ? first : stepFlow(i, factor: factor, height: ph, width: pw)
            FlowWarp.blendWarped(&output, frame: i, toward: i == 0 ? previous : nil,
                                 flow: Self.enlarged(t.flow, working: (h, w), frame: (output.h, output.w)),
                                 trust: t.trusted, trustRegion: (h, w), alpha: alpha)
        }
    }

    /// A flow at the padded working size as one at the frame's size: its working region
    /// (h × w) enlarged to H × W, the vectors scaled.
    private static func enlarged(_ flow: Tensor, working: (h: Int, w: Int), frame: (h: Int, w: Int)) -> Tensor {
        let (ph, pw) = (flow.shape[0], flow.shape[1])
        let (h, w) = working
        var region = flow
        if (ph, pw) != (h, w) {
            region = Tensor(uninitialized: [h, w, 2])
            region.data.withUnsafeMutableBufferPointer { r in
                flow.data.withUnsafeBufferPointer { f in
                    for y in 0..<h { (r.baseAddress! + y * w * 2).update(from: f.baseAddress! + y * pw * 2, count: w * 2) }
                }
            }
        }
        return frame == working ? region : FarnebackFlow.enlarge(region, height: frame.h, width: frame.w)
    }
}
