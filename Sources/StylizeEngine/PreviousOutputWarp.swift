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

    /// The integer shrink factor of the flow's images for a frame of this size.
    static func flowDownscale(height: Int, width: Int) -> Int { max(1, min(height, width) / flowSide) }

    /// The previous batch's newest input, output (RGB) and decoder output (RGB or the
    /// affine head's maps), padded; nil at a stream's start.
    private var previousInput: Tensor?
    private var previousOutput: Tensor?
    private var previousDecoded: Tensor?
    /// This batch's per-frame backward flows (padded size) and where they are trusted
    /// (1) or not (0), from `images(for:)`, for `blend`.
    private var flows: [Tensor] = []
    private var visible: [Tensor] = []

    mutating func reset() {
        previousInput = nil
        previousOutput = nil
        previousDecoded = nil
        flows = []
        visible = []
    }

    /// Keeps a batch's newest input (padded, [1, H, W, 3]), its RGB output and its decoder
    /// output (working size, replicate-padded to the input's size here).
    mutating func keep(input: Tensor, output: Tensor, decoded: Tensor) {
        func padded(_ t: Tensor) -> Tensor {
            t.h == input.h && t.w == input.w ? t : padReplicate(t, height: input.h, width: input.w)
        }
        previousInput = input
        previousOutput = padded(output)
        previousDecoded = padded(decoded)
        flows = []
        visible = []
    }

    /// Whether `keep` has something for frames of this padded size (a stream's first batch,
    /// or one after a size change, has not).
    func hasPrevious(height: Int, width: Int) -> Bool {
        previousInput.map { $0.h == height && $0.w == width } ?? false
    }

    /// Conditioning images for `frames` (padded, NHWC [-1, 1]): per frame, the warped
    /// previous output where the flow is consistent, the frame elsewhere. Without a previous
    /// output of this size, the frames themselves.
    mutating func images(for frames: Tensor) -> Tensor {
        flows = []
        visible = []
        guard let input = previousInput, let output = previousOutput,
              hasPrevious(height: frames.h, width: frames.w) else { return frames }
        let factor = Self.flowDownscale(height: frames.h, width: frames.w)
        func grey(_ t: Tensor, _ i: Int) -> Tensor {
            let g = FlowWarp.grey(t, index: i)
            return factor == 1 ? g : FarnebackFlow.shrink(g, by: factor)
        }
        let previous = flow.expansion(of: grey(input, 0))
        let (h, w, c) = (frames.h, frames.w, frames.c)
        let plane = h * w * c
        var out = Tensor(uninitialized: frames.shape)
        for i in 0..<frames.n {
            let current = flow.expansion(of: grey(frames, i))
            let backward = flow.flow(from: current, to: previous)
            let forward = flow.flow(from: previous, to: current)
            // On the flow's grid: 1 where the forward–backward test fails or the source
            // lies outside the frame.
            let occluded = FlowWarp.occlusion(forward: forward, backward: backward)
            let (sh, sw) = (backward.shape[0], backward.shape[1])
            let full = factor == 1 ? backward : FarnebackFlow.enlarge(backward, height: h, width: w)
            let (warped, valid) = FlowWarp.warp(output, flow: full)
            var trusted = Tensor(uninitialized: [h, w])
            out.data.withUnsafeMutableBufferPointer { o in
                frames.data.withUnsafeBufferPointer { f in
                    warped.data.withUnsafeBufferPointer { wp in
                        occluded.data.withUnsafeBufferPointer { occ in
                            valid.data.withUnsafeBufferPointer { ok in
                                trusted.data.withUnsafeMutableBufferPointer { t in
                                    let dst = o.baseAddress! + i * plane
                                    let src = f.baseAddress! + i * plane
                                    for y in 0..<h {
                                        let row = min(sh - 1, y / factor) * sw
                                        for x in 0..<w {
                                            let p = y * w + x
                                            let keepFrame = occ[row + min(sw - 1, x / factor)] > 0.5 || ok[p] < 0.5
                                            t[p] = keepFrame ? 0 : 1
                                            let from = keepFrame ? src : wp.baseAddress!
                                            for k in 0..<c { dst[p * c + k] = from[p * c + k] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            flows.append(full)
            visible.append(trusted)
        }
        return out
    }

    /// Mixes the warped previous decoder output into this batch's (`decoded`, working size
    /// [B, h, w, C], within the padded size): decoded = α·warped + (1 − α)·decoded where the
    /// flow is trusted. Needs this batch's `images(for:)`; without them (first batch, a
    /// refresh-less batch) it leaves `decoded` alone.
    func blend(_ decoded: inout Tensor, alpha: Float) {
        guard alpha > 0, let previous = previousDecoded, flows.count == decoded.n, previous.c == decoded.c else { return }
        let (h, w, c) = (decoded.h, decoded.w, decoded.c)
        let (ph, pw) = (previous.h, previous.w)
        guard h <= ph, w <= pw else { return }
        for i in 0..<decoded.n {
            let warped = FlowWarp.warp(previous, flow: flows[i]).warped
            decoded.data.withUnsafeMutableBufferPointer { d in
                warped.data.withUnsafeBufferPointer { wp in
                    visible[i].data.withUnsafeBufferPointer { v in
                        let dst = d.baseAddress! + i * h * w * c
                        for y in 0..<h {
                            for x in 0..<w where v[y * pw + x] > 0.5 {
                                let (o, p) = ((y * w + x) * c, (y * pw + x) * c)
                                for k in 0..<c { dst[o + k] += alpha * (wp[p + k] - dst[o + k]) }
                            }
                        }
                    }
                }
            }
        }
    }
}
