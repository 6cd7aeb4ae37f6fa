import Foundation

/// diffusers' `FlowMatchEulerDiscreteScheduler` (rectified flow: SD3, Flux, the
/// paper's DreamLite model), velocity prediction v = z − x₀.
///
/// Checked against diffusers 0.42.1; where it differs from how papers and Flux-style
/// pipelines usually state the schedule (docs/ARCHITECTURE.md#schedulers,
/// #flow-matching-shift), this type follows diffusers:
/// - Default schedule: σ = linspace(σ_max, σ_min, N) over the *training* table's ends
///   (σ_min ≈ 1/T, already shifted once at construction), then shifted — not
///   linspace(1, 1/N, N). N = 4 with shift 3 gives t = [1000, 857.69, 602.15, 8.93].
///   linspace(1, 1/N, N) is what Flux-style pipelines pass explicitly; do that with
///   `TimestepOptions.sigmas`.
/// - Static shift: σ′ = sσ/(1 + (s−1)σ) (the same as the e^μ form below with e^μ = s).
///   Dynamic shifting (`use_dynamic_shifting`): σ′ = e^μ/(e^μ + 1/σ − 1)
///   ("exponential") or μ/(μ + 1/σ − 1) ("linear"), μ passed to setTimesteps.
/// - μ: diffusers' pipelines compute μ = m·L + b with m = (max_shift − base_shift) /
///   (max_image_seq_len − base_image_seq_len); Flux's 0.5 / 1.15 / 256 / 4096 give
///   m = 0.65/3840, diffusers' value (not 0.66/3840). `calculateShift` does this from
///   the config.
///
/// Step: t = 1000σ, x′ = x + (σ′ − σ)·v (N = 1: x₀ = z − v); with `stochastic_sampling`
/// x̂₀ = x − σv and x′ = (1 − σ′)·x̂₀ + σ′·z. `addNoise` is diffusers' `scale_noise`:
/// σ·z + (1 − σ)·x₀.
///
/// diffusers computes the default schedule in float64 and explicit sigmas in float32;
/// both paths are mirrored so timesteps match to the bit.
public struct FlowMatchEulerDiscreteScheduler: Scheduler {
    public static let className = "FlowMatchEulerDiscreteScheduler"
    public let configFile: String
    public let numTrainTimesteps: Int
    public let shift: Double
    public let useDynamicShifting: Bool
    public let baseShift: Double
    public let maxShift: Double
    public let baseImageSeqLen: Int
    public let maxImageSeqLen: Int
    /// "exponential" or "linear" (diffusers' `time_shift_type`).
    public let timeShiftType: String
    public let shiftTerminal: Double?
    public let stochasticSampling: Bool
    /// The ends of the (statically shifted) training σ table.
    let trainingSigmaMax: Float
    let trainingSigmaMin: Float

    public private(set) var timesteps: [Float] = []
    public private(set) var sigmas: [Float]? = nil
    public var predictionType: PredictionType { .flow }
    public var initNoiseSigma: Float { 1 }

    public init(configFile: String) throws { try self.init(ConfigReader(file: configFile)) }

    public init(_ r: ConfigReader) throws {
        configFile = r.file
        numTrainTimesteps = try r.int("num_train_timesteps", 1000)
        guard numTrainTimesteps >= 1 else {
            throw ModelError.invalidConfig(file: r.file, key: "num_train_timesteps", reason: "must be at least 1")
        }
        shift = try r.double("shift", 1)
        useDynamicShifting = try r.bool("use_dynamic_shifting", false)
        baseShift = try r.double("base_shift", 0.5)
        maxShift = try r.double("max_shift", 1.15)
        baseImageSeqLen = try r.int("base_image_seq_len", 256)
        maxImageSeqLen = try r.int("max_image_seq_len", 4096)
        timeShiftType = try r.string("time_shift_type", "exponential")
        guard ["exponential", "linear"].contains(timeShiftType) else { throw r.unsupported("time_shift_type", timeShiftType) }
        // diffusers tests `if shift_terminal:`, so 0 means off.
        let terminal = try r.optionalDouble("shift_terminal")
        shiftTerminal = terminal == 0 ? nil : terminal
        stochasticSampling = try r.bool("stochastic_sampling", false)
        if try r.bool("invert_sigmas", false) { throw r.unsupported("invert_sigmas", true) }
        for key in ["use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas"] where try r.bool(key, false) {
            throw r.unsupported(key, true)
        }

        // The training table: t = linspace(1, T, T) reversed, σ = t/T, statically
        // shifted unless shifting is dynamic (float32 torch).
        let T = Float(numTrainTimesteps)
        let ends = [Float(NumPy.linspace(1, Double(numTrainTimesteps), numTrainTimesteps).last!), 1]
        var tableEnds = ends.map { $0 / T }
        if !useDynamicShifting {
            let s = Float(shift), sm1 = Float(shift - 1)
            tableEnds = tableEnds.map { (s * $0) / (1 + sm1 * $0) }
        }
        trainingSigmaMax = tableEnds[0]
        trainingSigmaMin = tableEnds[1]
    }

    /// μ for an image of `imageSeqLen` tokens, as diffusers' pipelines compute it
    /// (`calculate_shift`): linear from base_shift at base_image_seq_len to max_shift at
    /// max_image_seq_len. For a Flux-style 2×2-packed latent, L = (h/2)·(w/2).
    public func calculateShift(imageSeqLen: Int) -> Double {
        let m = (maxShift - baseShift) / Double(maxImageSeqLen - baseImageSeqLen)
        let b = baseShift - m * Double(baseImageSeqLen)
        return Double(imageSeqLen) * m + b
    }

    public mutating func setTimesteps(_ steps: Int, options: TimestepOptions) throws {
        guard steps >= 1 else { throw ModelError.invalidInput(name: "steps", reason: "\(Self.className): need at least 1 step, got \(steps)") }
        if options.strength != 1 {
            throw ModelError.invalidInput(name: "strength", reason: "\(Self.className) does not take a strength; start from a later timestep instead")
        }
        if useDynamicShifting && options.mu == nil {
            throw ModelError.invalidInput(name: "mu", reason: "\(configFile) sets use_dynamic_shifting, so setTimesteps needs mu")
        }
        let shifted: [Float]
        if let custom = options.sigmas {
            guard custom.count == steps else {
                throw ModelError.invalidInput(name: "sigmas", reason: "has \(custom.count) values for \(steps) steps")
            }
            shifted = shiftFloat32(custom, mu: options.mu)
        } else {
            let T = Double(numTrainTimesteps)
            let ts = NumPy.linspace(Double(trainingSigmaMax) * T, Double(trainingSigmaMin) * T, steps)
            shifted = shiftFloat64(ts.map { $0 / T }, mu: options.mu).map { Float($0) }
        }
        let T = Float(numTrainTimesteps)
        timesteps = shifted.map { $0 * T }
        sigmas = shifted + [0]
    }

    /// The shift and terminal stretch in float64 (diffusers' default schedule).
    private func shiftFloat64(_ sigma: [Double], mu: Double?) -> [Double] {
        var out: [Double]
        if useDynamicShifting, let mu {
            if timeShiftType == "exponential" {
                let e = exp(mu)
                out = sigma.map { e / (e + (1 / $0 - 1)) }
            } else {
                out = sigma.map { mu / (mu + (1 / $0 - 1)) }
            }
        } else {
            out = sigma.map { shift * $0 / (1 + (shift - 1) * $0) }
        }
        if let terminal = shiftTerminal {
            let scale = (1 - out[out.count - 1]) / (1 - terminal)
            out = out.map { 1 - ((1 - $0) / scale) }
        }
        return out
    }

    /// The same in float32 (explicit sigmas arrive as a float32 NumPy array and Python
    /// scalars do not widen it).
    private func shiftFloat32(_ sigma: [Float], mu: Double?) -> [Float] {
        var out: [Float]
        if useDynamicShifting, let mu {
            if timeShiftType == "exponential" {
                let e = Float(exp(mu))
                out = sigma.map { e / (e + (1 / $0 - 1)) }
            } else {
                let m = Float(mu)
                out = sigma.map { m / (m + (1 / $0 - 1)) }
            }
        } else {
            let s = Float(shift), sm1 = Float(shift - 1)
            out = sigma.map { s * $0 / (1 + sm1 * $0) }
        }
        if let terminal = shiftTerminal {
            let scale = (1 - out[out.count - 1]) / Float(1 - terminal)
            out = out.map { 1 - ((1 - $0) / scale) }
        }
        return out
    }

    public func scaleModelInput(_ sample: Tensor, timestep: Float) throws -> Tensor { sample }

    public func stepUsesNoise(at timestep: Float) throws -> Bool {
        _ = try scheduleIndex(of: timestep)
        return stochasticSampling
    }

    public func step(modelOutput: Tensor, timestep: Float, sample: Tensor, noise: Tensor?) throws -> SchedulerStepOutput {
        try checkShapes(sample, [("modelOutput", modelOutput), ("noise", noise)])
        let i = try scheduleIndex(of: timestep)
        let sigma = sigmas![i], next = sigmas![i + 1]
        if stochasticSampling {
            let z = try requireNoise(noise, at: timestep)
            let x0 = mapTensors(sample, modelOutput) { x, v in x - sigma * v }
            let keep = 1 - next
            return SchedulerStepOutput(prevSample: mapTensors(x0, z) { x0, n in keep * x0 + next * n }, denoised: nil)
        }
        let dt = next - sigma
        return SchedulerStepOutput(prevSample: mapTensors(sample, modelOutput) { x, v in x + dt * v }, denoised: nil)
    }

    public func addNoise(original: Tensor, noise: Tensor, timestep: Float) throws -> Tensor {
        try checkShapes(original, [("noise", noise)])
        let sigma = sigmas![try scheduleIndex(of: timestep)]
        let keep = 1 - sigma
        return mapTensors(original, noise) { x, z in sigma * z + keep * x }
    }
}
