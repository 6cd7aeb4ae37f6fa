import StylizeCore

/// diffusers `Timesteps`: sinusoidal features of the (float) timestep.
public struct Timesteps: Sendable {
    public let numChannels: Int
    public let flipSinToCos: Bool
    public let downscaleFreqShift: Float

    public func callAsFunction(_ t: [Float]) -> Tensor {
        sinusoidalTimestepEmbedding(t, dim: numChannels, flipSinToCos: flipSinToCos,
                                    downscaleFreqShift: downscaleFreqShift)
    }
}

/// diffusers `TimestepEmbedding`: [cond_proj] → linear_1 → act → linear_2 → [post_act].
public struct TimestepEmbedding: Sendable {
    let condProj: Linear?
    let linear1: Linear
    let linear2: Linear
    let act: Activation
    let postAct: Activation?

    public init(_ w: Weights, inChannels: Int, timeEmbedDim: Int, act: Activation = .silu,
                outDim: Int? = nil, postAct: Activation? = nil, condProjDim: Int? = nil) throws {
        condProj = try condProjDim.map { try Linear(w["cond_proj"], inFeatures: $0, outFeatures: inChannels, bias: false) }
        linear1 = try Linear(w["linear_1"], inFeatures: inChannels, outFeatures: timeEmbedDim)
        linear2 = try Linear(w["linear_2"], inFeatures: timeEmbedDim, outFeatures: outDim ?? timeEmbedDim)
        self.act = act
        self.postAct = postAct
    }

    public func callAsFunction(_ sample: Tensor, condition: Tensor? = nil) -> Tensor {
        var x = sample
        if let condProj, let condition { addInPlace(&x, condProj(condition)) }
        x = linear1(x)
        act.apply(&x)
        x = linear2(x)
        postAct?.apply(&x)
        return x
    }
}

/// Adds a per-sample channel vector ([B, C]) to every pixel of an NHWC tensor.
func addBatchChannelBias(_ x: inout Tensor, _ bias: Tensor) {
    let (n, c) = (x.shape[0], x.shape.last!)
    let pixels = x.count / (n * c)
    precondition(bias.shape == [n, c], "bias \(bias.shape) does not fit \(x.shape)")
    x.data.withUnsafeMutableBufferPointer { xb in
        for b in 0..<n {
            let row = Array(bias.data[(b * c)..<((b + 1) * c)])
            addRowBias(xb.baseAddress! + b * pixels * c, rows: pixels, bias: row)
        }
    }
}
