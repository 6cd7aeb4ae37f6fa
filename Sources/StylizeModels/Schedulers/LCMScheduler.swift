/// diffusers' `LCMScheduler` (latent consistency models).
///
/// Checked against diffusers 0.42.1 (docs/ARCHITECTURE.md#schedulers): the distillation
/// timesteps are {k−1, 2k−1, …} with k = T / original_inference_steps (50 →
/// {19, 39, …, 999}); N of them are picked at ⌊linspace(0, count, N, endpoint=false)⌋
/// from the top, so N = 4 → [999, 759, 499, 259]. With c = timestep_scaling·t (10t),
/// c_skip = 0.25/(c² + 0.25), c_out = c/√(c² + 0.25), d = c_out·x̂₀ + c_skip·xₜ; every
/// step but the last re-noises to the next timestep, x = √ᾱ′·d + √(1−ᾱ′)·z, and the
/// last returns d. `timestep_spacing` and `steps_offset` are accepted and, as in
/// diffusers, unused.
public struct LCMScheduler: Scheduler {
    public static let className = "LCMScheduler"
    public let configFile: String
    public let predictionType: PredictionType
    public let originalInferenceSteps: Int
    public let timestepScaling: Double
    public let clipSample: Bool
    public let clipSampleRange: Float
    public let finalAlphaCumprod: Float
    let schedule: NoiseSchedule

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
        timestepScaling = try r.double("timestep_scaling", 10)
        clipSample = try r.bool("clip_sample", false)
        clipSampleRange = try r.float("clip_sample_range", 1)
        if try r.bool("thresholding", false) { throw r.unsupported("thresholding", true) }
        finalAlphaCumprod = try r.bool("set_alpha_to_one", true) ? 1 : schedule.alphasCumprod[0]
        _ = try TimestepSpacing(r, default: .leading)
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        timesteps = try distilledTimesteps(steps: steps, options: options, originalSteps: originalInferenceSteps).map(Float.init)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor { sample }

    public func stepUsesNoise(at timestep: Float) throws -> Bool {
        try scheduleIndex(of: timestep) != timesteps.count - 1
    }

    /// The consistency-model boundary scalings, in float32 as diffusers computes them
    /// from its int64 timestep tensor.
    func boundaryScalings(_ t: Int) -> (cSkip: Float, cOut: Float) {
        let scaled = Float(t) * Float(timestepScaling)
        let cSkip = 0.25 / (scaled * scaled + 0.25)
        let cOut = scaled / (scaled * scaled + 0.25).squareRoot()
        return (cSkip, cOut)
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput), ("noise", noise)])
        let i = try scheduleIndex(of: timestep)
        let t = try integerTimestep(timestep)
        let isLast = i == timesteps.count - 1
        let prevT = isLast ? t : Int(timesteps[i + 1])
        let alphaT = try schedule.alphaCumprod(at: t, file: configFile)
        let alphaPrev = prevT >= 0 ? try schedule.alphaCumprod(at: prevT, file: configFile) : finalAlphaCumprod
        let betaT = 1 - alphaT, betaPrev = 1 - alphaPrev
        let (cSkip, cOut) = boundaryScalings(t)

        let sa = alphaT.squareRoot(), sb = betaT.squareRoot()
        var x0: Tensor
        switch predictionType {
        case .epsilon: x0 = mapTensors(sample, modelOutput) { x, e in (x - sb * e) / sa }
        case .sample, .flow: x0 = modelOutput
        case .vPrediction: x0 = mapTensors(sample, modelOutput) { x, v in sa * x - sb * v }
        }
        if clipSample {
            let r = clipSampleRange
            x0 = mapTensor(x0) { min(max($0, -r), r) }
        }
        let denoised = mapTensors(x0, sample) { x0, x in cOut * x0 + cSkip * x }
        guard !isLast else { return SchedulerStepOutput(prevSample: denoised, denoised: denoised) }
        let z = try requireNoise(noise, at: timestep)
        let a = alphaPrev.squareRoot(), b = betaPrev.squareRoot()
        let prev = mapTensors(denoised, z) { d, n in a * d + b * n }
        return SchedulerStepOutput(prevSample: prev, denoised: denoised)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try ddpmAddNoise(original: original, noise: noise, timestep: timestep, schedule: schedule, file: configFile)
    }
}

extension Scheduler {
    /// The LCM / TCD inference timesteps: the distillation schedule
    /// {k−1, 2k−1, …, ⌊original·strength⌋·k − 1}, k = ⌊T/original⌋, reversed, sampled at
    /// ⌊linspace(0, count, N, endpoint=false)⌋. Errors as diffusers raises them.
    func distilledTimesteps(steps: Int, options: TimestepOptions, originalSteps: Int) throws -> [Int] {
        if options.mu != nil { throw ModelError.invalidInput(name: "mu", reason: "\(Self.className) has no dynamic shifting") }
        if options.sigmas != nil { throw ModelError.invalidInput(name: "sigmas", reason: "\(Self.className) does not take custom sigmas") }
        let strength = options.strength
        guard strength > 0 && strength <= 1 else {
            throw ModelError.invalidInput(name: "strength", reason: "must be in (0, 1], got \(strength)")
        }
        guard steps >= 1 && steps <= numTrainTimesteps else {
            throw ModelError.invalidInput(name: "steps", reason: "\(Self.className): \(steps) is not in 1...\(numTrainTimesteps)")
        }
        guard originalSteps >= 1 && originalSteps <= numTrainTimesteps else {
            throw ModelError.invalidInput(
                name: "original_inference_steps",
                reason: "\(originalSteps) is not in 1...num_train_timesteps \(numTrainTimesteps) (\(configFile))")
        }
        let k = numTrainTimesteps / originalSteps
        let count = Int(Double(originalSteps) * strength)
        guard count / steps >= 1 else {
            throw ModelError.invalidInput(
                name: "steps",
                reason: "\(Self.className): original_inference_steps × strength = \(originalSteps) × \(strength) is smaller than \(steps) steps")
        }
        guard steps <= originalSteps else {
            throw ModelError.invalidInput(
                name: "steps", reason: "\(Self.className): \(steps) exceeds original_inference_steps \(originalSteps) (\(configFile))")
        }
        let origin = (1...count).reversed().map { $0 * k - 1 }
        return NumPy.linspace(0, Double(count), steps, endpoint: false).map { origin[Int($0.rounded(.down))] }
    }
}
