/// diffusers' `EulerAncestralDiscreteScheduler`: the Euler schedule with fresh noise
/// injected at every step (the usual SD-Turbo sampler).
///
/// Checked against diffusers 0.42.1 (docs/ARCHITECTURE.md#schedulers): with σ → σ′,
/// σ_up = √(σ′²(σ² − σ′²)/σ²), σ_down = √(σ′² − σ_up²),
/// x′ = x + ((x − x̂₀)/σ)(σ_down − σ) + σ_up·z. At the last step σ′ = 0, so σ_up = 0 and
/// the result is x̂₀ (up to rounding); diffusers still draws z there, this type does not
/// need it. Prediction types: epsilon and v_prediction (diffusers raises for sample).
public struct EulerAncestralDiscreteScheduler: Scheduler {
    public static let className = "EulerAncestralDiscreteScheduler"
    public let configFile: String
    public let predictionType: PredictionType
    public let timestepSpacing: String
    public let stepsOffset: Int
    let table: SigmaTable

    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float]? = nil
    public var numTrainTimesteps: Int { table.schedule.numTrainTimesteps }
    public var alphasCumprod: [Float] { table.schedule.alphasCumprod }

    public init(configFile: String) throws { try self.init(ConfigReader(file: configFile)) }

    public init(_ r: ConfigReader) throws {
        configFile = r.file
        table = try SigmaTable(r)
        predictionType = try PredictionType.read(r, allowed: [.epsilon, .vPrediction])
        timestepSpacing = try TimestepSpacing(r, default: .linspace).rawValue
        stepsOffset = try r.int("steps_offset", 0)
    }

    public var initNoiseSigma: Float {
        let maxSigma = (sigmas ?? table.trainingSigmas).max() ?? 0
        return timestepSpacing == "leading" ? (maxSigma * maxSigma + 1).squareRoot() : maxSigma
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        try rejectOptions(options, steps: steps)
        let spacing = TimestepSpacing(rawValue: timestepSpacing)!
        timesteps = spacing.eulerTimesteps(steps: steps, trainTimesteps: numTrainTimesteps, stepsOffset: stepsOffset)
        sigmas = table.inferenceSigmas(at: timesteps, finalSigmaIsMin: false)
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor {
        let sigma = sigmas![try scheduleIndex(of: timestep)]
        let denominator = (sigma * sigma + 1).squareRoot()
        return mapTensor(sample) { $0 / denominator }
    }

    /// σ_up and σ_down for the step leaving index `i`.
    private func ancestralSigmas(_ i: Int) -> (up: Float, down: Float) {
        let from = sigmas![i], to = sigmas![i + 1]
        let up = ((to * to) * (from * from - to * to) / (from * from)).squareRoot()
        let down = (to * to - up * up).squareRoot()
        return (up, down)
    }

    public func stepUsesNoise(at timestep: Float) throws -> Bool {
        ancestralSigmas(try scheduleIndex(of: timestep)).up != 0
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput), ("noise", noise)])
        let i = try scheduleIndex(of: timestep)
        let sigma = sigmas![i]
        let predOriginal = predictOriginal(modelOutput: modelOutput, sample: sample, sigma: sigma, predictionType)
        let (up, down) = ancestralSigmas(i)
        let dt = down - sigma
        var prev = mapTensors(sample, predOriginal) { x, x0 in x + ((x - x0) / sigma) * dt }
        if up != 0 {
            let z = try requireNoise(noise, at: timestep)
            prev = mapTensors(prev, z) { x, n in x + n * up }
        }
        return SchedulerStepOutput(prevSample: prev, denoised: predOriginal)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try checkShapes(original, [("noise", noise)])
        let sigma = sigmas![try scheduleIndex(of: timestep)]
        return mapTensors(original, noise) { x, z in x + z * sigma }
    }
}
