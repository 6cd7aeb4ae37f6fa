/// diffusers' `DDIMScheduler` (Song et al. 2020).
///
/// Checked against diffusers 0.42.1 (docs/ARCHITECTURE.md#schedulers gives the η = 0
/// case): the previous timestep is p = t − ⌊T/N⌋ (not the next entry of the schedule),
/// with ᾱ_p = 1 below 0 when `set_alpha_to_one`, else ᾱ₀. x̂₀ from the prediction,
/// clipped to ±clip_sample_range when `clip_sample` (diffusers' default is true),
/// σₜ = η·√((1−ᾱ_p)/(1−ᾱₜ)·(1 − ᾱₜ/ᾱ_p)),
/// x_p = √ᾱ_p·x̂₀ + √(1 − ᾱ_p − σₜ²)·ε̂ + σₜ·z.
/// η is a `step` argument in diffusers; here it is the `eta` property (default 0).
public struct DDIMScheduler: Scheduler {
    public static let className = "DDIMScheduler"
    public let configFile: String
    public let predictionType: PredictionType
    public let timestepSpacing: String
    public let stepsOffset: Int
    public let clipSample: Bool
    public let clipSampleRange: Float
    /// ᾱ used as "previous" after the last step: 1 (`set_alpha_to_one`) or ᾱ₀.
    public let finalAlphaCumprod: Float
    let schedule: NoiseSchedule
    /// Stochasticity η of DDIM: 0 is deterministic; > 0 makes `step` consume noise.
    public var eta: Double = 0

    public private(set) var timesteps: [Float] = []
    public private(set) var numInferenceSteps: Int? = nil
    public var sigmas: [Float]? { nil }
    public var initNoiseSigma: Float { 1 }
    public var numTrainTimesteps: Int { schedule.numTrainTimesteps }
    public var alphasCumprod: [Float] { schedule.alphasCumprod }

    public init(configFile: String) throws { try self.init(ConfigReader(file: configFile)) }

    public init(_ r: ConfigReader) throws {
        configFile = r.file
        schedule = try NoiseSchedule(r, betaStart: 0.0001, betaEnd: 0.02, betaSchedule: "linear")
        predictionType = try alphaPredictionType(r)
        timestepSpacing = try TimestepSpacing(r, default: .leading).rawValue
        stepsOffset = try r.int("steps_offset", 0)
        clipSample = try r.bool("clip_sample", true)
        clipSampleRange = try r.float("clip_sample_range", 1)
        if try r.bool("thresholding", false) { throw r.unsupported("thresholding", true) }
        finalAlphaCumprod = try r.bool("set_alpha_to_one", true) ? 1 : schedule.alphasCumprod[0]
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        try rejectOptions(options, steps: steps)
        guard steps <= numTrainTimesteps else {
            throw ModelError.invalidInput(name: "steps", reason: "\(steps) exceeds num_train_timesteps \(numTrainTimesteps) (\(configFile))")
        }
        let spacing = TimestepSpacing(rawValue: timestepSpacing)!
        timesteps = spacing.ddimTimesteps(steps: steps, trainTimesteps: numTrainTimesteps, stepsOffset: stepsOffset).map(Float.init)
        numInferenceSteps = steps
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor { sample }

    public func stepUsesNoise(at timestep: Float) throws -> Bool { eta > 0 }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput), ("noise", noise)])
        guard let n = numInferenceSteps else {
            throw ModelError.invalidInput(name: "timestep", reason: "\(Self.className): setTimesteps has not been called")
        }
        let t = try integerTimestep(timestep)
        let p = t - numTrainTimesteps / n
        let alphaT = try schedule.alphaCumprod(at: t, file: configFile)
        let alphaPrev = p >= 0 ? try schedule.alphaCumprod(at: p, file: configFile) : finalAlphaCumprod
        let betaT = 1 - alphaT

        var (x0, eps) = predictOriginalAndNoise(modelOutput: modelOutput, sample: sample,
                                                alphaT: alphaT, betaT: betaT, predictionType)
        if clipSample {
            let r = clipSampleRange
            x0 = mapTensor(x0) { min(max($0, -r), r) }
        }
        let variance = ((1 - alphaPrev) / betaT) * (1 - alphaT / alphaPrev)
        let stdDev = Float(eta) * variance.squareRoot()
        let direction = (1 - alphaPrev - stdDev * stdDev).squareRoot()
        let sqrtAlphaPrev = alphaPrev.squareRoot()
        var prev = mapTensors(x0, eps) { x0, e in sqrtAlphaPrev * x0 + direction * e }
        if eta > 0 {
            let z = try requireNoise(noise, at: timestep)
            prev = mapTensors(prev, z) { x, n in x + stdDev * n }
        }
        return SchedulerStepOutput(prevSample: prev, denoised: x0)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try ddpmAddNoise(original: original, noise: noise, timestep: timestep, schedule: schedule, file: configFile)
    }
}

// MARK: - Shared by the ᾱ-parameterised schedulers (DDIM, LCM, TCD)

func alphaPredictionType(_ r: ConfigReader) throws -> PredictionType {
    try PredictionType.read(r, allowed: [.epsilon, .vPrediction, .sample])
}

extension Scheduler {
    /// DDIM, LCM and TCD index ᾱ by integer timestep.
    func integerTimestep(_ timestep: Float) throws -> Int {
        guard timestep == timestep.rounded(), timestep >= 0, timestep < Float(numTrainTimesteps) else {
            throw ModelError.invalidInput(
                name: "timestep", reason: "\(Self.className) needs an integer timestep in 0..<\(numTrainTimesteps), got \(timestep)")
        }
        return Int(timestep)
    }

    /// diffusers' DDPM `add_noise`: √ᾱₜ·x₀ + √(1−ᾱₜ)·z at any integer timestep.
    func ddpmAddNoise(original: Tensor, noise: Tensor, timestep: Float, schedule: NoiseSchedule, file: String) throws -> Tensor {
        try checkShapes(original, [("noise", noise)])
        let alpha = try schedule.alphaCumprod(at: try integerTimestep(timestep), file: file)
        let a = alpha.squareRoot(), b = (1 - alpha).squareRoot()
        return mapTensors(original, noise) { x, z in a * x + b * z }
    }
}

/// x̂₀ and ε̂ from the model output in ᾱ-space (DDIM, TCD), in diffusers' operation order.
func predictOriginalAndNoise(modelOutput: Tensor, sample: Tensor, alphaT: Float, betaT: Float,
                             _ prediction: PredictionType) -> (x0: Tensor, eps: Tensor) {
    let sa = alphaT.squareRoot(), sb = betaT.squareRoot()
    switch prediction {
    case .epsilon:
        return (mapTensors(sample, modelOutput) { x, e in (x - sb * e) / sa }, modelOutput)
    case .sample:
        return (modelOutput, mapTensors(sample, modelOutput) { x, x0 in (x - sa * x0) / sb })
    case .vPrediction, .flow:
        return (mapTensors(sample, modelOutput) { x, v in sa * x - sb * v },
                mapTensors(modelOutput, sample) { v, x in sa * v + sb * x })
    }
}
