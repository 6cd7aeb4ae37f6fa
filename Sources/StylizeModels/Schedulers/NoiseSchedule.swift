import Foundation

/// The DDPM training noise schedule (β, ᾱ) shared by the Euler, DDIM, LCM and TCD
/// schedulers, built exactly as their diffusers `__init__` builds it:
/// `beta_schedule` linear / scaled_linear / squaredcos_cap_v2 or `trained_betas`,
/// optionally `rescale_betas_zero_snr`, then ᾱ = cumprod(1 − β).
///
/// diffusers computes this in float32 torch; the arithmetic below follows the same
/// steps in the same precision (torch.linspace's fused start + step·i, cumprod with a
/// double accumulator) so ᾱ matches to the bit, and σ and the step coefficients that
/// derive from it match too.
struct NoiseSchedule: Sendable {
    let numTrainTimesteps: Int
    let betaSchedule: String
    let rescaleBetasZeroSnr: Bool
    let alphasCumprod: [Float]

    /// `defaults` are the class's own `__init__` defaults, which differ (DDIM and the
    /// Euler pair default to linear 1e-4…0.02, LCM and TCD to scaled_linear
    /// 0.00085…0.012).
    init(_ r: ConfigReader, betaStart defaultStart: Double, betaEnd defaultEnd: Double, betaSchedule defaultSchedule: String) throws {
        numTrainTimesteps = try r.int("num_train_timesteps", 1000)
        guard numTrainTimesteps >= 1 else {
            throw ModelError.invalidConfig(file: r.file, key: "num_train_timesteps", reason: "must be at least 1")
        }
        let start = try r.double("beta_start", defaultStart)
        let end = try r.double("beta_end", defaultEnd)
        betaSchedule = try r.string("beta_schedule", defaultSchedule)
        rescaleBetasZeroSnr = try r.bool("rescale_betas_zero_snr", false)

        var betas: [Float]
        if r.has("trained_betas") {
            betas = try r.floats("trained_betas", [])
            guard betas.count == numTrainTimesteps else {
                throw ModelError.invalidConfig(
                    file: r.file, key: "trained_betas",
                    reason: "has \(betas.count) values for num_train_timesteps = \(numTrainTimesteps)")
            }
        } else {
            switch betaSchedule {
            case "linear":
                betas = Self.torchLinspace(Float(start), Float(end), numTrainTimesteps)
            case "scaled_linear":
                betas = Self.torchLinspace(Float(pow(start, 0.5)), Float(pow(end, 0.5)), numTrainTimesteps).map { $0 * $0 }
            case "squaredcos_cap_v2":
                betas = Self.glideCosineBetas(numTrainTimesteps)
            default:
                throw r.unsupported("beta_schedule", betaSchedule)
            }
        }
        if rescaleBetasZeroSnr { betas = Self.rescaledToZeroTerminalSnr(betas) }
        alphasCumprod = Self.cumprod(betas.map { 1 - $0 })
    }

    /// ᾱ at an integer training timestep, as the DDPM-family schedulers index it.
    func alphaCumprod(at t: Int, file: String) throws -> Float {
        guard t >= 0 && t < alphasCumprod.count else {
            throw ModelError.invalidInput(name: "timestep", reason: "\(t) is outside 0..<\(alphasCumprod.count) (\(file))")
        }
        return alphasCumprod[t]
    }

    /// torch.linspace in float32 on the CPU: the first half counts up from `start`,
    /// the second half down from `end`, each value one fused multiply-add.
    static func torchLinspace(_ start: Float, _ end: Float, _ steps: Int) -> [Float] {
        if steps == 1 { return [start] }
        let step = (end - start) / Float(steps - 1)
        let halfway = steps / 2
        return (0..<steps).map { i in
            i < halfway ? start.addingProduct(step, Float(i)) : end.addingProduct(-step, Float(steps - i - 1))
        }
    }

    /// diffusers' `betas_for_alpha_bar` with the cosine ᾱ(t) of Nichol & Dhariwal,
    /// computed in Python floats and rounded to float32.
    static func glideCosineBetas(_ n: Int) -> [Float] {
        func alphaBar(_ t: Double) -> Double {
            let c = cos((t + 0.008) / 1.008 * Double.pi / 2)
            return c * c
        }
        return (0..<n).map { i in
            let t1 = Double(i) / Double(n), t2 = Double(i + 1) / Double(n)
            return Float(min(1 - alphaBar(t2) / alphaBar(t1), 0.999))
        }
    }

    /// torch.cumprod on the CPU accumulates in double and rounds each output.
    static func cumprod(_ values: [Float]) -> [Float] {
        var acc = 1.0
        return values.map { v in
            acc *= Double(v)
            return Float(acc)
        }
    }

    /// diffusers' `rescale_zero_terminal_snr` (Lin et al. 2023, Algorithm 1): shift and
    /// scale √ᾱ so the last timestep has zero signal, then convert back to β.
    static func rescaledToZeroTerminalSnr(_ betas: [Float]) -> [Float] {
        var sqrtBar = cumprod(betas.map { 1 - $0 }).map { $0.squareRoot() }
        let first = sqrtBar[0], last = sqrtBar[sqrtBar.count - 1]
        let scale = first / (first - last)
        for i in sqrtBar.indices { sqrtBar[i] = (sqrtBar[i] - last) * scale }
        let bar = sqrtBar.map { $0 * $0 }
        var alphas = [bar[0]]
        for i in 1..<bar.count { alphas.append(bar[i] / bar[i - 1]) }
        return alphas.map { 1 - $0 }
    }
}

/// diffusers' `timestep_spacing` (Table 2 of Lin et al., "Common Diffusion Noise
/// Schedules and Sample Steps are Flawed").
enum TimestepSpacing: String, Sendable {
    case linspace, leading, trailing

    init(_ r: ConfigReader, default fallback: TimestepSpacing) throws {
        let name = try r.string("timestep_spacing", fallback.rawValue)
        guard let s = TimestepSpacing(rawValue: name) else { throw r.unsupported("timestep_spacing", name) }
        self = s
    }

    /// The Euler schedulers' float timesteps: linspace stays fractional
    /// (np.linspace(0, T−1, N) in float32), leading adds `steps_offset`, trailing
    /// counts down from T in steps of T/N, rounds half to even and subtracts 1.
    func eulerTimesteps(steps: Int, trainTimesteps: Int, stepsOffset: Int) -> [Float] {
        switch self {
        case .linspace:
            return NumPy.linspace(0, Double(trainTimesteps - 1), steps).reversed().map { Float($0) }
        case .leading:
            let ratio = trainTimesteps / steps
            return (0..<steps).reversed().map { Float($0 * ratio) + Float(stepsOffset) }
        case .trailing:
            return NumPy.arange(Double(trainTimesteps), 0, -Double(trainTimesteps) / Double(steps))
                .map { Float($0.rounded(.toNearestOrEven)) - 1 }
        }
    }

    /// DDIM's integer timesteps: the same spacings, rounded to integers first.
    func ddimTimesteps(steps: Int, trainTimesteps: Int, stepsOffset: Int) -> [Int] {
        switch self {
        case .linspace:
            return NumPy.linspace(0, Double(trainTimesteps - 1), steps).reversed().map { Int($0.rounded(.toNearestOrEven)) }
        case .leading:
            let ratio = trainTimesteps / steps
            return (0..<steps).reversed().map { $0 * ratio + stepsOffset }
        case .trailing:
            return NumPy.arange(Double(trainTimesteps), 0, -Double(trainTimesteps) / Double(steps))
                .map { Int($0.rounded(.toNearestOrEven)) - 1 }
        }
    }
}

/// The few NumPy float64 routines diffusers builds schedules with, reproduced to the
/// bit (same operation order), so timesteps come out identical.
enum NumPy {
    /// np.linspace(start, stop, num, endpoint=…): i·step + start, last value exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int, endpoint: Bool = true) -> [Double] {
        guard num > 0 else { return [] }
        let div = endpoint ? num - 1 : num
        guard div > 0 else { return [start] }
        let step = (stop - start) / Double(div)
        var y: [Double]
        if step == 0 {
            y = (0..<num).map { Double($0) / Double(div) * (stop - start) + start }
        } else {
            y = (0..<num).map { Double($0) * step + start }
        }
        if endpoint && num > 1 { y[num - 1] = stop }
        return y
    }

    /// np.arange(start, stop, step) for floats: length ⌈(stop − start)/step⌉, values
    /// start + i·δ with δ re-derived from the first two entries as NumPy's fill does.
    static func arange(_ start: Double, _ stop: Double, _ step: Double) -> [Double] {
        let length = Int(((stop - start) / step).rounded(.up))
        guard length > 0 else { return [] }
        if length == 1 { return [start] }
        let delta = (start + step) - start
        return [start, start + step] + (2..<max(length, 2)).map { start + Double($0) * delta }
    }

    /// np.interp(x, arange(count), fp) for x inside [0, count − 1].
    static func interpOnIntegers(_ x: Double, _ fp: [Float]) -> Double {
        let last = fp.count - 1
        if x >= Double(last) { return Double(fp[last]) }
        if x <= 0 { return Double(fp[0]) }
        let j = Int(x.rounded(.down))
        if Double(j) == x { return Double(fp[j]) }
        let slope = (Double(fp[j + 1]) - Double(fp[j])) / 1.0
        return slope * (x - Double(j)) + Double(fp[j])
    }
}
