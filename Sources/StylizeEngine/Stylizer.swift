import Foundation
import Synchronization
import StylizeModels

/// The main path's denoise loop for one batch: pad → autoencoder encode → 1–N U-Net
/// steps in the model's conditioning mode → decode → crop. Deterministic for a seed:
/// all noise comes from SplitMix64, either the same field for every frame
/// (`fixedNoise`, the temporal-stability default) or one per frame index.
public final class Stylizer: Sendable {
    public let model: StylizeModel
    /// One fixed noise field per (frame shape, seed, salt), for the current shape and seed.
    let fixedNoise = FixedNoiseCache()

    /// Seconds spent per stage since creation (for `bench element` and stats).
    public struct StageTimes: Sendable, Equatable {
        public var encode = 0.0, unet = 0.0, decode = 0.0, other = 0.0
        public var frames = 0
        public init() {}
    }
    private let times = Locked(StageTimes())
    public var stageTimes: StageTimes { times.withLock { $0 } }
    private func record(_ stage: WritableKeyPath<StageTimes, Double>, since t0: Double) {
        let dt = StreamStatistics.now() - t0
        times.withLock { $0[keyPath: stage] += dt }
    }

    public init(model: StylizeModel) { self.model = model }

    /// - Parameters:
    ///   - frames: NHWC [B, H, W, 3] in [-1, 1].
    ///   - conditioning: [T, D], shared by the batch.
    ///   - frameIndices: stream position of each frame (seeds per-frame noise).
    ///   - adapters: the batch's adapter hooks (a control adapter), if any.
    public func process(_ frames: Tensor, conditioning: Tensor, settings: StylizeSettings,
                        frameIndices: [Int], adapters: (any BatchAdapters)? = nil) throws -> Tensor {
        let b = frames.n
        times.withLock { $0.frames += b }
        var t0 = StreamStatistics.now()
        let m = model.sizeMultiple
        // The model runs at the working resolution; the head brings the result back.
        let (h, w) = model.config.working.size(height: frames.h, width: frames.w, scale: settings.workingScale, multiple: m)
        let working = (h, w) == (frames.h, frames.w) ? frames : resizeArea(frames, height: h, width: w)
        let (ph, pw) = ((h + m - 1) / m * m, (w + m - 1) / m * m)
        let padded = (ph, pw) == (h, w) ? working : padReplicate(working, height: ph, width: pw)
        let scaling = model.codec.scalingFactor
        record(\.other, since: t0)
        t0 = StreamStatistics.now()
        var source = try BatchLanes.map(padded) { try model.codec.encode($0) }
        if scaling != 1 { affineInPlace(&source, scale: scaling, shift: 0) }
        record(\.encode, since: t0)
        t0 = StreamStatistics.now()
        let context = repeatBatch(conditioning, b)
        let hooks = try adapters?.hooks(padded: padded, latentHeight: source.h, latentWidth: source.w)

        var scheduler = model.scheduler
        let latentShape = source.shape
        func noise(_ salt: Int) -> Tensor { self.noise(shape: latentShape, settings: settings, frameIndices: frameIndices, salt: salt) }
        let mode = model.config.mode.strategy
        var (x, timesteps) = try mode.start(source: source, steps: max(1, settings.steps), strength: settings.strength,
                                           scheduler: &scheduler, options: TimestepOptions(mu: mu(latentShape)),
                                           noise: { noise(0) })
        for (i, t) in timesteps.enumerated() {
            let input = mode.unetInput(try scheduler.scaleModelInput(x, timestep: t), source: source)
            let output = try BatchLanes.denoise(model.denoiser, DenoiserInputs(sample: input, timesteps: [t], encoderHiddenStates: context,
                                                                              linearHooks: hooks))
            let stepNoise = try scheduler.stepUsesNoise(at: t) ? noise(i + 1) : nil
            x = try scheduler.step(modelOutput: mode.prediction(output, width: x.w), timestep: t, sample: x,
                                   noise: stepNoise).prevSample
        }
        if scaling != 1 { affineInPlace(&x, scale: 1 / scaling, shift: 0) }
        record(\.unet, since: t0)
        t0 = StreamStatistics.now()
        var decoded = try BatchLanes.map(x) { try model.codec.decode($0) }
        record(\.decode, since: t0)
        t0 = StreamStatistics.now()
        if (ph, pw) != (h, w) { decoded = crop(decoded, height: h, width: w) }
        adapters?.adjust(decoded: &decoded)
        var out = model.config.outputHead.output(decoded, working: working, frames: frames, spec: model.config.working)
        // An affine head applies its maps to each frame as it comes, sensor noise included,
        // which no blend of the maps can steady: the temporal blend runs on its output too.
        let frameBlend = model.config.outputHead == .affine
        if frameBlend { adapters?.adjust(output: &out, workingHeight: h, workingWidth: w) }
        if let adapters, adapters.wantsOutput {
            // The previous-output source keeps only the newest frame: the head runs on it alone.
            let newest = decoded.batchItems([b - 1])
            adapters.output(model.config.outputHead.workingOutput(newest, working: working.batchItems([b - 1])),
                            decoded: newest, frame: frameBlend ? out.batchItems([b - 1]) : nil)
        }
        record(\.other, since: t0)
        return out
    }

    /// Flow matching's resolution-dependent shift μ (L = latent h·w/4;
    /// docs/ARCHITECTURE.md#flow-matching-shift), passed only to schedulers configured
    /// for dynamic shifting.
    private func mu(_ latentShape: [Int]) -> Double? {
        guard let flow = model.scheduler as? FlowMatchEulerDiscreteScheduler, flow.useDynamicShifting else { return nil }
        return flow.calculateShift(imageSeqLen: latentShape[1] * latentShape[2] / 4)
    }

    private func noise(shape: [Int], settings: StylizeSettings, frameIndices: [Int], salt: Int) -> Tensor {
        let perFrame = shape.dropFirst().reduce(1, *)
        let field = !settings.fixedNoise ? nil
            : fixedNoise.field(.init(frameShape: Array(shape.dropFirst()), seed: settings.seed, salt: salt)) {
                var field = Tensor(uninitialized: [perFrame])
                field.data.withUnsafeMutableBufferPointer {
                    Self.fillGaussian($0, seed: settings.seed &+ UInt64(salt) &* 0x9E37_79B9)
                }
                return field
            }
        var out = Tensor(uninitialized: shape)
        for i in 0..<shape[0] {
            let frame = (i * perFrame)..<((i + 1) * perFrame)
            if let field {
                out.data.replaceSubrange(frame, with: field.data)
            } else {
                let seed = settings.seed &+ UInt64(truncatingIfNeeded: frameIndices[i]) &* 0x1_0000_0001 &+ UInt64(salt) &* 0x9E37_79B9
                out.data.withUnsafeMutableBufferPointer { Self.fillGaussian(UnsafeMutableBufferPointer(rebasing: $0[frame]), seed: seed) }
            }
        }
        return out
    }

    private static func fillGaussian(_ buffer: UnsafeMutableBufferPointer<Float>, seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for i in buffer.indices { buffer[i] = rng.normal() }
    }
}

/// Adapters attached to one batch: their input hooks, from the batch's frames at the
/// padded size the denoiser sees, and the decoded output (padded) once it exists.
public protocol BatchAdapters {
    func hooks(padded: Tensor, latentHeight: Int, latentWidth: Int) throws -> LinearInputHooks?
    /// Whether `output` should be called (it costs a copy, or an affine head's application
    /// at the working size).
    var wantsOutput: Bool { get }
    /// The batch's newest frame at the working size (not padded), [1, h, w, C]: RGB in
    /// [-1, 1], and what the decoder gave (RGB, or the affine head's maps).
    /// `frame`: the newest output at the frame's size, when `adjust(output:)` ran.
    func output(_ rgb: Tensor, decoded: Tensor, frame: Tensor?)
    /// Changes the decoder's output (working size, not padded) before the head uses it
    /// (the temporal blend).
    func adjust(decoded: inout Tensor)
    /// Changes the batch's output at the frame's size (the temporal blend of an affine
    /// head's result); the model ran at workingHeight × workingWidth.
    func adjust(output: inout Tensor, workingHeight: Int, workingWidth: Int)
}

// MARK: - tensor plumbing

/// [T, D] → [B, T, D].
func repeatBatch(_ t: Tensor, _ b: Int) -> Tensor {
    let rank2 = t.rank == 2 ? t : t.reshaped(Array(t.shape.suffix(2)))
    var out = Tensor(uninitialized: [b] + rank2.shape)
    for i in 0..<b { out.data.replaceSubrange((i * rank2.count)..<((i + 1) * rank2.count), with: rank2.data) }
    return out
}

/// NHWC side by side on width: [B, H, W1 + W2, C].
func concatWidth(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.n == b.n && a.h == b.h && a.c == b.c)
    let (n, h, c) = (a.n, a.h, a.c)
    var out = Tensor(uninitialized: [n, h, a.w + b.w, c])
    for bi in 0..<n {
        for y in 0..<h {
            let dst = ((bi * h + y) * (a.w + b.w)) * c
            out.data.replaceSubrange(dst..<(dst + a.w * c), with: a.data[((bi * h + y) * a.w * c)..<((bi * h + y + 1) * a.w * c)])
            out.data.replaceSubrange((dst + a.w * c)..<(dst + (a.w + b.w) * c),
                                     with: b.data[((bi * h + y) * b.w * c)..<((bi * h + y + 1) * b.w * c)])
        }
    }
    return out
}

/// The left `width` columns of an NHWC tensor.
func leftHalf(_ t: Tensor, width: Int) -> Tensor { crop(t, height: t.h, width: width) }

/// The top-left height × width of an NHWC tensor.
func crop(_ t: Tensor, height: Int, width: Int) -> Tensor {
    let c = t.c
    var out = Tensor(uninitialized: [t.n, height, width, c])
    for b in 0..<t.n {
        for y in 0..<height {
            let src = ((b * t.h + y) * t.w) * c
            let dst = ((b * height + y) * width) * c
            out.data.replaceSubrange(dst..<(dst + width * c), with: t.data[src..<(src + width * c)])
        }
    }
    return out
}

/// Pads an NHWC tensor on the bottom and right by repeating the edge pixels (edges stay
/// edges, so the model sees no artificial border).
func padReplicate(_ t: Tensor, height: Int, width: Int) -> Tensor {
    let c = t.c
    var out = Tensor(uninitialized: [t.n, height, width, c])
    for b in 0..<t.n {
        for y in 0..<height {
            let sy = min(y, t.h - 1)
            for x in 0..<width {
                let sx = min(x, t.w - 1)
                let src = ((b * t.h + sy) * t.w + sx) * c
                let dst = ((b * height + y) * width + x) * c
                out.data.replaceSubrange(dst..<(dst + c), with: t.data[src..<(src + c)])
            }
        }
    }
    return out
}

extension OutputHead {
    /// RGB at the working size: the decoder's pixels, or its colour maps applied to the
    /// working-size input.
    func workingOutput(_ decoded: Tensor, working: Tensor) -> Tensor {
        switch self {
        case .affine: return applyAffineColor(decoded, to: working)
        case .rgb:
            var rgb = decoded
            clampInPlace(&rgb)
            return rgb
        }
    }

    /// The frame-size output from the decoder's output at the working size.
    func output(_ decoded: Tensor, working: Tensor, frames: Tensor, spec: WorkingResolution) -> Tensor {
        switch self {
        case .affine:
            return applyAffineColor(decoded, to: frames)
        case .rgb:
            let rgb = workingOutput(decoded, working: working)
            guard working.h != frames.h || working.w != frames.w else { return rgb }
            let coefficients = guidedColorCoefficients(guide: working, target: rgb, radius: spec.guidedRadius, eps: spec.guidedEps)
            return applyAffineColor(coefficients, to: frames)
        }
    }
}

func clampInPlace(_ t: inout Tensor) {
    for i in 0..<t.count { t.data[i] = min(1, max(-1, t.data[i])) }
}
