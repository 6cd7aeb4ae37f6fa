import Foundation

/// Sinusoidal timestep features, diffusers' `get_timestep_embedding`:
/// exponent_i = −ln(maxPeriod)·i / (half − downscaleFreqShift), emb = [sin, cos] (or
/// [cos, sin] with flipSinToCos), zero-padded when `dim` is odd. Returns [B, dim].
public func sinusoidalTimestepEmbedding(
    _ timesteps: [Float], dim: Int, flipSinToCos: Bool, downscaleFreqShift: Float,
    scale: Float = 1, maxPeriod: Float = 10000
) -> Tensor {
    let half = dim / 2
    var out = Tensor(zeros: [timesteps.count, dim])
    // PyTorch computes the frequencies in float32: do the same to match to rounding.
    let logMax = Float(Foundation.log(Double(maxPeriod)))
    var freqs = [Float](repeating: 0, count: half)
    for i in 0..<half {
        let exponent = -logMax * Float(i) / (Float(half) - downscaleFreqShift)
        freqs[i] = Foundation.exp(exponent)
    }
    for (b, t) in timesteps.enumerated() {
        for i in 0..<half {
            let arg = scale * (t * freqs[i])
            let (s, c) = (Foundation.sin(arg), Foundation.cos(arg))
            out.data[b * dim + (flipSinToCos ? half + i : i)] = s
            out.data[b * dim + (flipSinToCos ? i : half + i)] = c
        }
    }
    return out
}
