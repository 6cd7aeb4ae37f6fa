import Foundation
import StylizeModels

/// What the model's decoder produces (stylize.json "output_head").
public enum OutputHead: String, Sendable, CaseIterable {
    /// RGB pixels (every diffusers autoencoder). Below the frame's size, a guided filter
    /// carries the result back to it.
    case rgb
    /// 12 channels: a per-pixel affine colour transform of the input (3×3 + offset,
    /// `applyAffineColor`'s layout), applied to the full-resolution frame.
    case affine

    var decoderChannels: Int { self == .rgb ? 3 : 12 }
}

/// stylize.json's `working` object: the resolution the model runs at, relative to the
/// frame (docs/ARCHITECTURE.md#working-resolution).
public struct WorkingResolution: Sendable, Equatable {
    /// Linear scale of the frame (1: the frame's own size).
    public var scale: Float = 1
    /// At most this many pixels (0: no cap).
    public var maxPixels: Int = 0
    /// The guided filter that restores the frame's size for RGB heads: window radius at
    /// the working resolution, and regularisation (for a [0, 1] image).
    public var guidedRadius: Int = 4
    public var guidedEps: Float = 1e-3

    public init() {}

    init(_ r: ConfigReader) throws {
        scale = try r.float("scale", scale)
        guard scale > 0, scale <= 1 else {
            throw ModelError.invalidConfig(file: r.file, key: "scale", reason: "must be in (0, 1], is \(scale)")
        }
        maxPixels = try r.int("max_pixels", maxPixels)
        guidedRadius = try r.int("guided_radius", guidedRadius)
        guidedEps = try r.float("guided_eps", guidedEps)
        guard maxPixels >= 0, (1...16).contains(guidedRadius), guidedEps > 0 else {
            throw ModelError.invalidConfig(file: r.file, key: "max_pixels",
                                           reason: "needs max_pixels ≥ 0, guided_radius 1…16, guided_eps > 0")
        }
    }

    /// The working size for a frame: the frame scaled by `scale`, shrunk further to
    /// `maxPixels`, each side then rounded down to a whole `multiple` (the model's size
    /// multiple), never below `multiple` nor above the frame. Rounding down instead of
    /// padding up: at 640×480 and half scale the model runs at 320×224, where a padded
    /// 320×240 would have run at 320×256, 14 % more work for pixels that are cropped away.
    public func size(height: Int, width: Int, scale s: Float, multiple: Int) -> (height: Int, width: Int) {
        var f = Double(min(1, max(0.01, s)))
        if maxPixels > 0 { f = min(f, (Double(maxPixels) / Double(height * width)).squareRoot()) }
        guard f < 1 else { return (height, width) }
        func side(_ n: Int) -> Int { min(n, max(multiple, Int((Double(n) * f).rounded()) / multiple * multiple)) }
        return (side(height), side(width))
    }
}
