import Foundation

/// Rotary position embedding in the "rotate_half" convention of transformers' Llama /
/// Qwen family: for each head, x[i] and x[i + D/2] rotate by the angle of frequency i.
///
/// `angles` holds one angle per (row, i < D/2), row = b·T + t, so the same routine serves
/// 1-D RoPE (angle = position · inv_freq[i]) and Qwen3-VL's multimodal RoPE (the angle of
/// frequency i taken from the temporal, height or width position).
public struct RotaryAngles: Sendable {
    public let rows: Int
    public let halfDim: Int
    public let cos: [Float]
    public let sin: [Float]

    public init(angles: [Float], rows: Int, halfDim: Int) {
        precondition(angles.count == rows * halfDim)
        self.rows = rows
        self.halfDim = halfDim
        // float32 cos/sin of float32 angles, as transformers computes them.
        self.cos = angles.map { Foundation.cos($0) }
        self.sin = angles.map { Foundation.sin($0) }
    }

    /// Standard RoPE: inv_freq[i] = 1 / base^(2i/D), computed in float32 like transformers.
    public static func inverseFrequencies(headDim: Int, base: Float) -> [Float] {
        (0..<(headDim / 2)).map { i in 1 / Foundation.pow(base, Float(2 * i) / Float(headDim)) }
    }

    /// 1-D positions → angles: [rows] positions × inv_freq.
    public init(positions: [Float], inverseFrequencies inv: [Float]) {
        var angles = [Float](repeating: 0, count: positions.count * inv.count)
        for (r, p) in positions.enumerated() {
            for i in 0..<inv.count { angles[r * inv.count + i] = p * inv[i] }
        }
        self.init(angles: angles, rows: positions.count, halfDim: inv.count)
    }

    /// Rotates every head of x ([rows, heads·D] viewed flat) in place.
    public func apply(_ x: inout Tensor, heads: Int) {
        let d = 2 * halfDim
        precondition(x.count == rows * heads * d, "RoPE: \(x.shape) is not \(rows) rows × \(heads) heads × \(d)")
        let half = halfDim
        x.data.withUnsafeMutableBufferPointer { xb in
            cos.withUnsafeBufferPointer { cb in
                sin.withUnsafeBufferPointer { sb in
                    let base = xb.baseAddress!
                    parallelRanges(rows, minPerThread: 16) { r in
                        for row in r {
                            let c = cb.baseAddress! + row * half, s = sb.baseAddress! + row * half
                            for h in 0..<heads {
                                let v = base + (row * heads + h) * d
                                for i in 0..<half {
                                    let a = v[i], b = v[i + half]
                                    v[i] = a * c[i] - b * s[i]
                                    v[i + half] = b * c[i] + a * s[i]
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
