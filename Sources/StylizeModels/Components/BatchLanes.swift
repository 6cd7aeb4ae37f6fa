import StylizeCore

/// Runs a batched call as concurrent lanes over the batch: each lane takes a contiguous
/// slice of the frames and runs the whole network on them on one thread.
///
/// At the small sizes of a working-scale frame the layers are too small to split well:
/// the nano U-Net at 320×224, batch 8, took 0.065 s on two threads against 0.046 s for
/// batch 4 on one (its autoencoder: encode 0.029 against 0.024 s, decode 0.038 against
/// 0.032 s). Lanes keep each thread's work whole. Each lane draws its buffers from its
/// own pool lane, so the hot path allocates nothing after warm-up however the lanes
/// interleave. The items do not depend on one another; a lane's smaller batch can only
/// change which convolution algorithm a layer takes (Winograd wants 64 tiles), so
/// results agree to float rounding (`BatchLaneTests`).
public enum BatchLanes {
    /// `body(range)` for contiguous slices of 0..<batch, one per budget thread, each on
    /// its own thread and pool lane; their outputs stacked in batch order.
    public static func run(batch: Int, _ body: (Range<Int>) throws -> Tensor) throws -> Tensor {
        let lanes = min(ThreadBudget.available, batch)
        guard lanes > 1 else { return try body(0..<batch) }
        let chunk = (batch + lanes - 1) / lanes
        var results = [Result<Tensor, any Error>?](repeating: nil, count: lanes)
        results.withUnsafeMutableBufferPointer { slots in
            let slot = slots.baseAddress!
            parallelLanes(batch) { range in
                let lane = range.lowerBound / chunk
                slot[lane] = TensorBufferPool.withLane(lane) { Result { try body(range) } }
            }
        }
        return Tensor.concatenatingBatches(try results.compactMap { try $0?.get() })
    }

    /// A denoiser call split by frames (`DenoiserInputs.slicingBatch`).
    public static func denoise(_ denoiser: any Denoiser, _ inputs: DenoiserInputs) throws -> Tensor {
        try run(batch: inputs.sample.n) { range in
            try denoiser(range.count == inputs.sample.n ? inputs : inputs.slicingBatch(range))
        }
    }

    /// A per-image function of an NHWC batch (an autoencoder's encode or decode), split by frames.
    public static func map(_ x: Tensor, _ body: (Tensor) throws -> Tensor) throws -> Tensor {
        try run(batch: x.n) { range in try body(range.count == x.n ? x : x.batchItems(range)) }
    }
}
