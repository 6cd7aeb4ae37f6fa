import StylizeCore

/// The temporal adapter's conditioning images: the previous batch's newest output,
/// backward-warped by Farnebäck flow onto each frame of the next batch, with pixels the
/// flow cannot vouch for (occluded, or coming from outside the frame) taken from the frame
/// itself (docs/ARCHITECTURE.md#temporal-adapter).
///
/// Frame i of a batch is warped with the flow from frame i to the previous batch's last
/// input, so one kept expansion (that input's) serves the whole batch. Everything lives
/// at the padded working size the denoiser sees. Touched only by the batch (worker) thread.
struct PreviousOutputWarp {
    private let flow = FarnebackFlow()
    /// The previous batch's newest input and output, padded; nil at a stream's start.
    private var previousInput: Tensor?
    private var previousOutput: Tensor?

    mutating func reset() {
        previousInput = nil
        previousOutput = nil
    }

    /// Keeps a batch's newest input (padded, [1, H, W, 3]) and its output (working size,
    /// replicate-padded to the input's size here).
    mutating func keep(input: Tensor, output: Tensor) {
        previousInput = input
        previousOutput = output.h == input.h && output.w == input.w
            ? output : padReplicate(output, height: input.h, width: input.w)
    }

    /// Whether `keep` has something for frames of this padded size (a stream's first batch,
    /// or one after a size change, has not).
    func hasPrevious(height: Int, width: Int) -> Bool {
        previousInput.map { $0.h == height && $0.w == width } ?? false
    }

    /// Conditioning images for `frames` (padded, NHWC [-1, 1]): per frame, the warped
    /// previous output where the flow is consistent, the frame elsewhere. Without a previous
    /// output of this size, the frames themselves.
    func images(for frames: Tensor) -> Tensor {
        guard let input = previousInput, let output = previousOutput,
              hasPrevious(height: frames.h, width: frames.w) else { return frames }
        let previous = flow.expansion(of: FlowWarp.grey(input))
        let (h, w, c) = (frames.h, frames.w, frames.c)
        let plane = h * w * c
        var out = Tensor(uninitialized: frames.shape)
        for i in 0..<frames.n {
            let current = flow.expansion(of: FlowWarp.grey(frames, index: i))
            let backward = flow.flow(from: current, to: previous)
            let forward = flow.flow(from: previous, to: current)
            let occluded = FlowWarp.occlusion(forward: forward, backward: backward)
            let warped = FlowWarp.warp(output, flow: backward).warped
            out.data.withUnsafeMutableBufferPointer { o in
                frames.data.withUnsafeBufferPointer { f in
                    warped.data.withUnsafeBufferPointer { wp in
                        occluded.data.withUnsafeBufferPointer { occ in
                            let dst = o.baseAddress! + i * plane
                            let src = f.baseAddress! + i * plane
                            for p in 0..<(h * w) {
                                // `occlusion` marks samples from outside the frame too.
                                let from = occ[p] > 0.5 ? src : wp.baseAddress!
                                for k in 0..<c { dst[p * c + k] = from[p * c + k] }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
