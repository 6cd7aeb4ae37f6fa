import StylizeCore

/// A diffusion sampler configured from a diffusers `scheduler/scheduler_config.json`,
/// one type per diffusers class (as in apple/ml-stable-diffusion), reproducing that
/// class's timesteps, sigmas and update rule step for step.
///
/// Differences from diffusers' objects, all deliberate:
/// - Stateless stepping: there is no hidden step counter. The position in the schedule
///   is the index of `timestep` in `timesteps`, so one configured scheduler can serve
///   every batch and every thread. (diffusers takes the *second* match on the first
///   step when a schedule repeats a timestep; the schedules built here never do.)
/// - Explicit randomness: every draw diffusers makes inside `step` (ancestral noise,
///   LCM / TCD re-noising, DDIM with η > 0, stochastic flow sampling) is the `noise`
///   argument, so a run is reproducible and can be fed diffusers' exact noise.
/// - Option errors surface when the config is read, naming the file and key, rather
///   than at the first `step`.
///
/// Tensors are plain Float arrays in any layout (NCHW or NHWC): every operation is
/// elementwise, so `modelOutput`, `sample` and `noise` just have to share one shape,
/// which the result keeps.
///
/// Checked step for step against diffusers 0.42.1 (formulas in
/// docs/ARCHITECTURE.md#schedulers, details on each type): Euler / Euler ancestral, LCM,
/// DDIM and TCD match the way they are usually written down. Where diffusers differs
/// from that, the code follows diffusers:
/// - Flow matching: the default schedule is linspace(σ_max, σ_min ≈ 1/T) of the
///   training table, shifted, not linspace(1, 1/N, N) (that is what Flux pipelines
///   pass as explicit sigmas); μ's slope with Flux's config is 0.65/3840, not
///   0.66/3840; L = h·w/4 is Flux's 2×2-packed token count, a pipeline choice.
/// - SDEdit for the Euler pair is x₀ + σz in their σ-space (the DDPM form
///   √ᾱ·x₀ + √(1−ᾱ)·z divided by √ᾱ); for flow matching σz + (1−σ)x₀.
/// - TCD's last step returns x_s with s = 0, i.e. x̂₀ re-noised to t = 0, not x̂₀.
public protocol Scheduler: Sendable {
    /// The diffusers class this type reproduces (`_class_name`).
    static var className: String { get }
    /// Reads the scheduler's `scheduler_config.json` (diffusers' defaults for absent keys).
    init(_ config: ConfigReader) throws
    /// The config file this scheduler was read from, for error messages.
    var configFile: String { get }
    var numTrainTimesteps: Int { get }
    /// What the denoiser predicts; `.flow` for the flow-matching scheduler.
    var predictionType: PredictionType { get }

    /// The inference timesteps after `setTimesteps`, in sampling order, as the model
    /// expects them (diffusers' integer timesteps are exact in Float). Empty before.
    var timesteps: [Float] { get }
    /// σ for each timestep plus the terminal one (`timesteps.count + 1` values) for the
    /// σ-parameterised schedulers (Euler, Euler ancestral, flow matching); nil for the
    /// ᾱ-parameterised ones (DDIM, LCM, TCD), which diffusers gives no sigmas either.
    var sigmas: [Float]? { get }
    /// The standard deviation to scale unit Gaussian noise by for the first sample.
    var initNoiseSigma: Float { get }

    /// Builds the inference schedule for `steps` denoising steps.
    mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws

    /// The model input for `sample` at `timestep` (Euler divides by √(σ²+1); the
    /// others return `sample` unchanged).
    func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor

    /// Whether `step` at `timestep` consumes its `noise` argument, so a caller can skip
    /// drawing noise it would not use.
    func stepUsesNoise(at timestep: Float) throws -> Bool

    /// One denoising step from `timestep` to the next one in the schedule. `noise` (unit
    /// Gaussian, same shape) is required exactly where `stepUsesNoise` says so.
    func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput

    /// Noises a clean sample to `timestep` (SDEdit img2img start point): diffusers'
    /// `add_noise`, or `scale_noise` for flow matching.
    func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor
}

extension Scheduler {
    public mutating func setTimesteps(_ steps: Int, mu: Double? = nil) throws {
        try setTimesteps(steps, options: TimestepOptions(mu: mu))
    }
}

/// What the denoiser's output means (diffusers' `prediction_type`).
public enum PredictionType: String, Sendable, CaseIterable {
    case epsilon
    case vPrediction = "v_prediction"
    case sample
    /// Velocity v = noise − x₀ of rectified flow (flow-matching schedulers only).
    case flow

    /// The config's `prediction_type` (default "epsilon"), one of `allowed`; "original_sample"
    /// is read as `sample` where `sample` is allowed and `originalSampleAlias` is set.
    static func read(_ r: ConfigReader, allowed: [PredictionType], originalSampleAlias: Bool = false) throws -> PredictionType {
        let name = try r.string("prediction_type", "epsilon")
        let parsed = name == "original_sample" && originalSampleAlias ? .sample : PredictionType(rawValue: name)
        guard let p = parsed, allowed.contains(p) else { throw r.unsupported("prediction_type", name) }
        return p
    }
}

/// Extra inputs to `setTimesteps` that only some schedulers take, as in diffusers'
/// `set_timesteps` keyword arguments. A scheduler given an option it does not use
/// throws rather than silently ignoring it.
public struct TimestepOptions: Sendable, Equatable {
    /// Flow matching with `use_dynamic_shifting`: the resolution-dependent shift μ
    /// (see `FlowMatchEulerDiscreteScheduler.calculateShift`). Required there.
    public var mu: Double?
    /// Flow matching: explicit σ values before shifting, one per step. Flux-style
    /// pipelines pass linspace(1, 1/N, N) here instead of using the default schedule.
    public var sigmas: [Float]?
    /// LCM / TCD: restricts the distillation timesteps to the first `strength` of the
    /// training range, as their img2img pipelines do. 1 = full range.
    public var strength: Double

    public init(mu: Double? = nil, sigmas: [Float]? = nil, strength: Double = 1) {
        self.mu = mu
        self.sigmas = sigmas
        self.strength = strength
    }
}

/// The result of one `step`.
public struct SchedulerStepOutput: Sendable {
    /// The sample at the next timestep (the final sample after the last step).
    public var prevSample: Tensor
    /// diffusers' second output, where the class has one: the predicted clean sample
    /// (`pred_original_sample`; LCM's `denoised`; TCD's `pred_noised_sample` x_s).
    /// nil for flow matching, whose diffusers step returns none.
    public var denoised: Tensor?

    public init(prevSample: Tensor, denoised: Tensor?) {
        self.prevSample = prevSample
        self.denoised = denoised
    }
}

// MARK: - Shared helpers

extension Scheduler {
    /// Where `timestep` sits in the schedule; the stateless stand-in for diffusers'
    /// `index_for_timestep` / step counter.
    func scheduleIndex(of timestep: Float) throws -> Int {
        guard !timesteps.isEmpty else {
            throw ModelError.invalidInput(name: "timestep", reason: "\(Self.className): setTimesteps has not been called")
        }
        guard let i = timesteps.firstIndex(of: timestep) else {
            throw ModelError.invalidInput(
                name: "timestep",
                reason: "\(timestep) is not in the \(Self.className) schedule \(timesteps)")
        }
        return i
    }

    func checkShapes(_ sample: Tensor, _ others: [(String, Tensor?)]) throws {
        for (name, t) in others {
            guard let t else { continue }
            guard t.shape == sample.shape else {
                throw ModelError.invalidInput(name: name, reason: "shape \(t.shape) differs from the sample's \(sample.shape)")
            }
        }
    }

    func requireNoise(_ noise: Tensor?, at timestep: Float) throws -> Tensor {
        guard let noise else {
            throw ModelError.invalidInput(name: "noise", reason: "\(Self.className) needs a noise tensor at timestep \(timestep)")
        }
        return noise
    }
}

/// Elementwise maps over equally shaped tensors, keeping the first one's shape. The
/// schedulers write their formulas in the same operation order as diffusers' torch
/// code, so float32 results agree to the last bit or two.
@inline(__always)
func mapTensor(_ a: Tensor, _ f: (Float) -> Float) -> Tensor {
    var out = Tensor(uninitialized: a.shape)
    a.data.withUnsafeBufferPointer { pa in
        out.data.withUnsafeMutableBufferPointer { po in
            for i in 0..<po.count { po[i] = f(pa[i]) }
        }
    }
    return out
}

@inline(__always)
func mapTensors(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
    precondition(a.count == b.count)
    var out = Tensor(uninitialized: a.shape)
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            out.data.withUnsafeMutableBufferPointer { po in
                for i in 0..<po.count { po[i] = f(pa[i], pb[i]) }
            }
        }
    }
    return out
}

@inline(__always)
func mapTensors(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
    precondition(a.count == b.count && a.count == c.count)
    var out = Tensor(uninitialized: a.shape)
    a.data.withUnsafeBufferPointer { pa in
        b.data.withUnsafeBufferPointer { pb in
            c.data.withUnsafeBufferPointer { pc in
                out.data.withUnsafeMutableBufferPointer { po in
                    for i in 0..<po.count { po[i] = f(pa[i], pb[i], pc[i]) }
                }
            }
        }
    }
    return out
}
