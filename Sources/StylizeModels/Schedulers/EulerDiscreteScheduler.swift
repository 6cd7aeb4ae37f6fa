/// diffusers' `EulerDiscreteScheduler` (Karras et al. 2022, Algorithm 2 without churn):
/// SD-Turbo's scheduler.
///
/// Schedule (checked against diffusers 0.42.1; docs/ARCHITECTURE.md#schedulers):
/// σ(t) = √((1−ᾱₜ)/ᾱₜ) read off the training table at each inference timestep
/// (interpolated linearly for "linspace" spacing's fractional timesteps), then a final
/// σ = 0 ("zero") or σ(0) ("sigma_min"). "trailing": tᵢ = round(T − i·T/N) − 1, so
/// N = 4 → [999, 749, 499, 249]. The first sample is σ_max·z for linspace / trailing
/// and √(σ_max² + 1)·z for leading.
///
/// Step: model input x/√(σ²+1); x̂₀ = x − σε (ε), −σ/√(σ²+1)·v + x/(σ²+1) (v) or the
/// output itself (sample); x′ = x + (x − x̂₀)/σ · (σ′ − σ).
///
/// The sample lives in σ-space (x = x̂₀ + σz, not √ᾱ·x̂₀ + √(1−ᾱ)·z), so `addNoise` is
/// x₀ + σ·z: the DDPM-form SDEdit start √ᾱ·x₀ + √(1−ᾱ)·z (docs/ARCHITECTURE.md#sdedit)
/// divided by √ᾱ, which is what scaleModelInput expects.
public struct EulerDiscreteScheduler: Scheduler {
    public static let className = "EulerDiscreteScheduler"
    public let configFile: String
    public let predictionType: PredictionType
    public let timestepSpacing: String
    public let stepsOffset: Int
    /// Whether the last σ is 0 (diffusers "zero") or σ at t = 0 ("sigma_min").
    public let finalSigmaIsMin: Bool
    let table: SigmaTable

    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float]? = nil
    public var numTrainTimesteps: Int { table.schedule.numTrainTimesteps }
    public var alphasCumprod: [Float] { table.schedule.alphasCumprod }

    public init(configFile: String) throws { try self.init(ConfigReader(file: configFile)) }

    public init(_ r: ConfigReader) throws {
        configFile = r.file
        table = try SigmaTable(r)
        predictionType = try PredictionType.read(r, allowed: [.epsilon, .vPrediction, .sample], originalSampleAlias: true)
        let spacing = try TimestepSpacing(r, default: .linspace)
        timestepSpacing = spacing.rawValue
        stepsOffset = try r.int("steps_offset", 0)
        let interpolation = try r.string("interpolation_type", "linear")
        if interpolation != "linear" { throw r.unsupported("interpolation_type", interpolation) }
        for key in ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"] where try r.bool(key, false) {
            throw r.unsupported(key, true)
        }
        // Continuous timesteps (0.25·log σ) only take effect for v-prediction in diffusers.
        let timestepType = try r.string("timestep_type", "discrete")
        if timestepType != "discrete" && !(timestepType == "continuous" && predictionType != .vPrediction) {
            throw r.unsupported("timestep_type", timestepType)
        }
        let finalType = try r.string("final_sigmas_type", "zero")
        switch finalType {
        case "zero": finalSigmaIsMin = false
        case "sigma_min": finalSigmaIsMin = true
        default: throw r.unsupported("final_sigmas_type", finalType)
        }
    }

    public var initNoiseSigma: Float {
        let maxSigma = (sigmas ?? table.trainingSigmas).max() ?? 0
        return timestepSpacing == "leading" ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        try rejectOptions(options, steps: steps)
        let spacing = TimestepSpacing(rawValue: timestepSpacing)!
        timesteps = spacing.eulerTimesteps(steps: steps, trainTimesteps: numTrainTimesteps, stepsOffset: stepsOffset)
        sigmas = table.inferenceSigmas(at: timesteps, finalSigmaIsMin: finalSigmaIsMin)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor {
        let sigma = sigmas![try scheduleIndex(of: timestep)]
        let denominator = (sigma * sigma + 1).squareRoot()
        return mapTensor(sample) { $0 / denominator }
    }

    public func stepUsesNoise(at timestep: Float) throws -> Bool {
        _ = try scheduleIndex(of: timestep)
        return false
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput)])
        let i = try scheduleIndex(of: timestep)
        let sigma = sigmas![i]
        let predOriginal = predictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType)
        let dt = sigmas![i + 1] - sigma
        let prev = mapTensors(sample, predOriginal) { x, x0 in x + ((x - x0) / sigma) * dt }
        return SchedulerStepOutput(prevSample: prev, denoised: predOriginal)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try checkShapes(original, [("noise", noise)])
        let sigma = sigmas![try scheduleIndex(of: timestep)]
        return mapTensors(original, noise) { x, z in x + z * sigma }
    }
}

/// x̂₀ from the model output in σ-space, shared by both Euler schedulers.
func predictOriginal(modelOutput: Tensor, sample: Tensor, sigma: Float, _ prediction: PredictionType) -> Tensor {
    switch prediction {
    case .epsilon:
        return mapTensors(sample, modelOutput) { x, e in x - sigma * e }
    case .vPrediction:
        let cOut = -sigma / (sigma * sigma + 1).squareRoot()
        let cSkipDenominator = sigma * sigma + 1
        return mapTensors(modelOutput, sample) { v, x in v * cOut + x / cSkipDenominator }
    case .sample, .flow:
        return modelOutput
    }
}

extension Scheduler {
    /// The σ-from-ᾱ schedulers take no set_timesteps extras.
    func rejectOptions(_ options: TimestepOptions, steps: Int) throws {
        guard steps >= 1 else { throw ModelError.invalidInput(name: "steps", reason: "\(Self.className): need at least 1 step, got \(steps)") }
        if options.mu != nil { throw ModelError.invalidInput(name: "mu", reason: "\(Self.className) has no dynamic shifting") }
        if options.sigmas != nil { throw ModelError.invalidInput(name: "sigmas", reason: "\(Self.className) does not take custom sigmas") }
        if options.strength != 1 { throw ModelError.invalidInput(name: "strength", reason: "\(Self.className) does not take a strength; start from a later timestep instead") }
    }
}

/// The Euler schedulers' σ table: the training σ(t) = √((1−ᾱ)/ᾱ) (float32, as torch
/// computes it) and its lookup at inference timesteps.
struct SigmaTable: Sendable {
    let schedule: NoiseSchedule
    let trainingSigmas: [Float]

    init(_ r: ConfigReader) throws {
        var s = try NoiseSchedule(r, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear")
        if s.rescaleBetasZeroSnr {
            // As diffusers: near zero instead of zero so the first σ is finite (fp16's
            // smallest subnormal).
            var ac = s.alphasCumprod
            ac[ac.count - 1] = 0x1p-24
            s = NoiseSchedule(copying: s, alphasCumprod: ac)
        }
        schedule = s
        trainingSigmas = s.alphasCumprod.map { ((1 - $0) / $0).squareRoot() }
    }

    /// np.interp of the training σ at each timestep (double), rounded to float32, plus
    /// the final σ.
    func inferenceSigmas(at timesteps: [Float], finalSigmaIsMin: Bool) -> [Float] {
        let final: Float = finalSigmaIsMin ? trainingSigmas[0] : 0
        return timesteps.map { Float(NumPy.interpOnIntegers(Double($0), trainingSigmas)) } + [final]
    }
}

extension NoiseSchedule {
    init(copying s: NoiseSchedule, alphasCumprod: [Float]) {
        self.numTrainTimesteps = s.numTrainTimesteps
        self.betaSchedule = s.betaSchedule
        self.rescaleBetasZeroSnr = s.rescaleBetasZeroSnr
        self.alphasCumprod = alphasCumprod
    }
}
