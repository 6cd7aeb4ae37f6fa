/// diffusers' `TCDScheduler` (trajectory consistency distillation), with the LCM
/// timestep schedule.
///
/// Checked against diffusers 0.42.1 (docs/ARCHITECTURE.md#schedulers): with t′ the next
/// timestep (0 after the last), s = ⌊(1−γ)·t′⌋ (in float32, as diffusers computes it),
/// x_s = √ᾱ_s·x̂₀ + √(1−ᾱ_s)·ε̂, and x′ = √(ᾱ′/ᾱ_s)·x_s + √(1 − ᾱ′/ᾱ_s)·z on every
/// step but the last, which returns x_s (so with t′ = 0 the result is x̂₀ noised to
/// t = 0, not x̂₀ itself). γ = 0 is deterministic. γ is diffusers' `eta` step
/// argument (default 0.3); here it is the `gamma` property. As in diffusers,
/// `clip_sample` and `thresholding` are accepted and have no effect on TCD's step.
public struct TCDScheduler: Scheduler {
    public static let className = "TCDScheduler"
    public let configFile: String
    public let predictionType: PredictionType
    public let originalInferenceSteps: Int
    public let finalAlphaCumprod: Float
    let schedule: NoiseSchedule
    /// Stochasticity γ in [0, 1] (diffusers' `eta` argument of `TCDScheduler.step`).
    public var gamma: Double = 0.3

    public private(set) var timesteps: [Float] = []
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Float { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public var alphasCumprod: [Float] { schedule.alphasCumprod }

    public init(configFile: String) throws { try self.init(ConfigReader(file: configFile)) }

    public init(_ r: ConfigReader) throws {
        configFile = r.file
        schedule = try NoiseSchedule(r, betaStart: 0.00085, betaEnd: 0.012, betaSchedule: "scaled_linear")
        predictionType = try alphaPredictionType(r)
        originalInferenceSteps = try r.int("original_inference_steps", 50)
        finalAlphaCumprod = try r.bool("set_alpha_to_one", true) ? 1 : schedule.alphasCumprod[0]
        _ = try TimestepSpacing(r, default: .leading)
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        timesteps = try distilledTimesteps(steps: steps, options: options, originalSteps: originalInferenceSteps).map(Float.init)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor { sample }

    private func checkedGamma() throws -> Double {
        guard gamma >= 0 && gamma <= 1 else {
            throw ModelError.invalidInput(name: "gamma", reason: "TCD gamma must be in [0, 1], got \(gamma)")
        }
        return gamma
    }

    public func stepUsesNoise(at timestep: Float) throws -> Bool {
        try checkedGamma() > 0 && scheduleIndex(of: timestep) != timesteps.count - 1
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput), ("noise", noise)])
        let gamma = try checkedGamma()
        let i = try scheduleIndex(of: timestep)
        let t = try integerTimestep(timestep)
        let isLast = i == timesteps.count - 1
        let prevT = isLast ? 0 : Int(timesteps[i + 1])
        let s = Int((Float(1 - gamma) * Float(prevT)).rounded(.down))

        let alphaT = try schedule.alphaCumprod(at: t, file: configFile)
        let alphaPrev = prevT >= 0 ? try schedule.alphaCumprod(at: prevT, file: configFile) : finalAlphaCumprod
        let alphaS = try schedule.alphaCumprod(at: s, file: configFile)
        let (x0, eps) = predictOriginalAndNoise(modelOutput: modelOutput, sample: sample,
                                                alphaT: alphaT, betaT: 1 - alphaT, predictionType)
        let sa = alphaS.squareRoot(), sb = (1 - alphaS).squareRoot()
        let noised = mapTensors(x0, eps) { x0, e in sa * x0 + sb * e }
        guard gamma > 0 && !isLast else { return SchedulerStepOutput(prevSample: noised, denoised: noised) }
        let z = try requireNoise(noise, at: timestep)
        let a = (alphaPrev / alphaS).squareRoot(), b = (1 - alphaPrev / alphaS).squareRoot()
        let prev = mapTensors(noised, z) { x, n in a * x + b * n }
        return SchedulerStepOutput(prevSample: prev, denoised: noised)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try ddpmAddNoise(original: original, noise: noise, timestep: timestep, schedule: schedule, file: configFile)
    }
}
