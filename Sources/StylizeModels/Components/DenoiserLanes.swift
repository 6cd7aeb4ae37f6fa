import StylizeCore


/// Runs a denoiser call as concurrent lanes over the batch: each lane takes a contiguous
/// slice of the frames and runs the whole network on them on one thread.
///
/// At the small latents of a working-scale frame the network's layers are too small to
/// split well: the nano U-Net at 320×224, batch 8, took 0.065 s on two threads against
/// 0.046 s for batch 4 on one. Lanes keep each thread's work whole. Each lane draws its
/// buffers from its own pool lane, so the hot path allocates nothing after warm-up
/// however the lanes interleave. The items do not depend on one another; a lane's smaller
/// batch can only change which convolution algorithm a layer takes (Winograd wants 64
/// tiles), so results agree to float rounding (`DenoiserLaneTests`).
public enum DenoiserLanes {
    public static func run(_ denoiser: any Denoiser, _ inputs: DenoiserInputs) throws -> Tensor {
        let batch = inputs.sample.n
        let lanes = min(ThreadBudget.available, batch)
        guard lanes > 1 else { return try denoiser(inputs) }
        let chunk = (batch + lanes - 1) / lanes
        var results = [Result<Tensor, any Error>?](repeating: nil, count: lanes)
        results.withUnsafeMutableBufferPointer { slots in
            let slot = slots.baseAddress!
            parallelLanes(batch) { range in
                let lane = range.lowerBound / chunk
                slot[lane] = TensorBufferPool.withLane(lane) {
                    Result { try denoiser(inputs.slicingBatch(range)) }
                }
            }
        }
        return Tensor.concatenatingBatches(try results.compactMap { try $0?.get() })
    }
}
