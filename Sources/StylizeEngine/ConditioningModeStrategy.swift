import StylizeModels

/// How the source frame conditions the denoiser: the one place a conditioning mode
/// (`ConditioningMode`) says where sampling starts, what the U-Net
/// sees at each step and what of its output is kept. The denoise loop (`Stylizer`) has
/// one path for every mode; a new mode is a new conforming type plus its
/// `ConditioningMode` case.
protocol ConditioningModeStrategy: Sendable {
    /// The timesteps to run and the starting latent, from the source latent and noise.
    func start(source: Tensor, steps: Int, strength: Float, scheduler: inout any Scheduler,
               options: TimestepOptions, noise: () -> Tensor) throws -> (x: Tensor, timesteps: [Float])
    /// The U-Net's input for the scaled sample `x` of this step.
    func unetInput(_ x: Tensor, source: Tensor) -> Tensor
    /// The prediction for the sample (of width `width`) from the U-Net's output.
    func prediction(_ output: Tensor, width: Int) -> Tensor
    /// The denoiser's input channels this mode needs.
    func denoiserInputChannels(latentChannels: Int) -> Int
}

extension ConditioningModeStrategy {
    func unetInput(_ x: Tensor, source: Tensor) -> Tensor { x }
    func prediction(_ output: Tensor, width: Int) -> Tensor { output }
    func denoiserInputChannels(latentChannels: Int) -> Int { latentChannels }

    /// Pure noise at the scheduler's initial scale, over all `steps` (instruction-edit modes).
    func startFromNoise(steps: Int, scheduler: inout any Scheduler, options: TimestepOptions,
                        noise: () -> Tensor) throws -> (x: Tensor, timesteps: [Float]) {
        try scheduler.setTimesteps(steps, options: options)
        var x = noise()
        affineInPlace(&x, scale: scheduler.initNoiseSigma, shift: 0)
        return (x, scheduler.timesteps)
    }
}

/// SDEdit (docs/ARCHITECTURE.md#sdedit): the source latent re-noised to the step that
/// `strength` selects, then the last `steps` of a schedule of steps / strength.
struct SDEditMode: ConditioningModeStrategy {
    func start(source: Tensor, steps: Int, strength: Float, scheduler: inout any Scheduler,
               options: TimestepOptions, noise: () -> Tensor) throws -> (x: Tensor, timesteps: [Float]) {
        let strength = max(0.01, min(1, strength))
        let total = max(steps, Int((Float(steps) / strength).rounded()))
        var full = options
        full.strength = 1
        try scheduler.setTimesteps(total, options: full)
        let timesteps = Array(scheduler.timesteps.suffix(steps))
        return (try scheduler.addNoise(original: source, noise: noise(), timestep: timesteps[0]), timesteps)
    }
}

/// InstructPix2Pix-style (docs/ARCHITECTURE.md#concat-channels): the source latent
/// concatenated on channels to every step's input.
struct ConcatChannelsMode: ConditioningModeStrategy {
    func start(source: Tensor, steps: Int, strength: Float, scheduler: inout any Scheduler,
               options: TimestepOptions, noise: () -> Tensor) throws -> (x: Tensor, timesteps: [Float]) {
        try startFromNoise(steps: steps, scheduler: &scheduler, options: options, noise: noise)
    }

    func unetInput(_ x: Tensor, source: Tensor) -> Tensor { Tensor.concatChannels(x, source) }
    func denoiserInputChannels(latentChannels: Int) -> Int { 2 * latentChannels }
}

/// The paper's mode (docs/ARCHITECTURE.md#concat-width): the source latent side by side
/// with the sample; the output's left half is the prediction.
struct ConcatWidthMode: ConditioningModeStrategy {
    func start(source: Tensor, steps: Int, strength: Float, scheduler: inout any Scheduler,
               options: TimestepOptions, noise: () -> Tensor) throws -> (x: Tensor, timesteps: [Float]) {
        try startFromNoise(steps: steps, scheduler: &scheduler, options: options, noise: noise)
    }

    func unetInput(_ x: Tensor, source: Tensor) -> Tensor { concatWidth(x, source) }
    func prediction(_ output: Tensor, width: Int) -> Tensor { leftHalf(output, width: width) }
}

extension ConditioningMode {
    var strategy: any ConditioningModeStrategy {
        switch self {
        case .sdedit: return SDEditMode()
        case .concatChannels: return ConcatChannelsMode()
        case .concatWidth: return ConcatWidthMode()
        }
    }
}
