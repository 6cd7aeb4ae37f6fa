import Foundation
import StylizeModels
import XCTest

/// The schedulers against diffusers, replaying the committed traces
/// (tools/fixtures/make_scheduler_fixtures.py) step for step: same config, same
/// model outputs, same noise.
final class SchedulerTests: XCTestCase {
    // MARK: - Parity with diffusers

    func testEverySchedulerFixtureMatchesDiffusersStepForStep() throws {
        let cases = Self.cases()
        XCTAssertGreaterThanOrEqual(cases.count, 30, "expected ≥ 30 scheduler fixtures in \(Fixtures.path("schedulers"))")
        for name in cases {
            do { try replay(name) } catch { XCTFail("schedulers/\(name): \(error)") }
        }
    }

    func testFixtureSetCoversEveryRequiredCase() {
        // Guards the fixture set itself: a dropped case would silently shrink coverage.
        let required = [
            "euler_a_turbo_1step", "euler_a_turbo_4steps", "euler_turbo_4steps", "euler_vpred_trailing_4steps",
            "lcm_4steps", "lcm_1step",
            "ddim_trailing_4steps_alpha1", "ddim_trailing_4steps_alpha0",
            "ddim_leading_4steps_alpha1", "ddim_leading_4steps_alpha0",
            "tcd_4steps_gamma0p3", "flow_shift3_1step", "flow_shift3_4steps", "flow_dynamic_mu_4steps",
        ]
        let present = Set(Self.cases())
        for name in required { XCTAssertTrue(present.contains(name), "fixture schedulers/\(name) is missing") }
        var classes = Set<String>()
        for name in present {
            if let s = try? SchedulerFactory.make(configFile: Fixtures.path("schedulers", name, "scheduler_config.json")) {
                classes.insert(type(of: s).className)
            }
        }
        XCTAssertEqual(classes, Set(SchedulerFactory.supportedClassNames))
    }

    static func cases() -> [String] {
        let root = Fixtures.path("schedulers")
        return ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
            .filter { FileManager.default.fileExists(atPath: Fixtures.path("schedulers", $0, "scheduler_config.json")) }
            .sorted()
    }

    private func replay(_ name: String) throws {
        let dir = Fixtures.path("schedulers", name)
        let trace = try SafeTensorsFile(path: dir + "/trace.safetensors")
        let spec = try ConfigReader(file: dir + "/case.json")
        func section(_ key: String) -> ConfigReader {
            if case .object(let o)? = spec.raw(key) { return ConfigReader(object: o, file: spec.file) }
            return ConfigReader(object: [:], file: spec.file)
        }
        let setArgs = section("set_timesteps"), stepArgs = section("step")

        var scheduler = try SchedulerFactory.make(configFile: dir + "/scheduler_config.json")
        if let eta = try stepArgs.optionalDouble("eta") {
            if var ddim = scheduler as? DDIMScheduler {
                ddim.eta = eta
                scheduler = ddim
            } else if var tcd = scheduler as? TCDScheduler {
                tcd.gamma = eta
                scheduler = tcd
            } else {
                XCTFail("\(name): eta given for \(type(of: scheduler).className)")
            }
        }
        let options = TimestepOptions(mu: try setArgs.optionalDouble("mu"),
                                      sigmas: setArgs.has("sigmas") ? try setArgs.floats("sigmas", []) : nil,
                                      strength: try setArgs.double("strength", 1))
        try scheduler.setTimesteps(try spec.int("steps", 0), options: options)

        let label = "schedulers/\(name)"
        let tolerance = Float(try spec.double("tolerance", 1e-5))
        // Timesteps exactly; the schedule tables to 1e-5 relative (most are bit-exact).
        XCTAssertEqual(scheduler.timesteps, try trace.floats("timesteps"), "\(label): timesteps")
        if trace.entries["sigmas"] != nil {
            let ours = try XCTUnwrap(scheduler.sigmas, "\(label): no sigmas")
            assertClose(ours, try trace.floats("sigmas"), "\(label) sigmas", relative: 1e-5)
        } else {
            XCTAssertNil(scheduler.sigmas, "\(label): diffusers has no sigmas here")
        }
        if trace.entries["alphas_cumprod"] != nil {
            assertClose(try Self.alphasCumprod(scheduler), try trace.floats("alphas_cumprod"),
                        "\(label) alphas_cumprod", relative: 1e-5)
        }
        assertClose([scheduler.initNoiseSigma], try trace.floats("init_noise_sigma"), "\(label) init_noise_sigma", relative: 1e-5)

        var sample = try Fixtures.tensor(trace, "sample")
        for (i, t) in scheduler.timesteps.enumerated() {
            let p = "step\(i)."
            let noise = trace.entries[p + "noise"] == nil ? nil : try Fixtures.tensor(trace, p + "noise")
            if try scheduler.stepUsesNoise(at: t) {
                XCTAssertNotNil(noise, "\(label) step \(i): we need noise where diffusers drew none")
            }
            let scaled = try scheduler.scaleModelInput(sample, timestep: t)
            assertSchedulerParity(scaled, try Fixtures.tensor(trace, p + "scaled"), "\(label) step \(i) scaled", scale: tolerance)
            let out = try scheduler.step(modelOutput: try Fixtures.tensor(trace, p + "model_output"),
                                         timestep: t, sample: sample, noise: noise)
            assertSchedulerParity(out.prevSample, try Fixtures.tensor(trace, p + "prev_sample"), "\(label) step \(i) prev_sample", scale: tolerance)
            let second = ["pred_original_sample", "denoised", "pred_noised_sample"].first { trace.entries[p + $0] != nil }
            if let second {
                let ours = try XCTUnwrap(out.denoised, "\(label) step \(i): no \(second)")
                assertSchedulerParity(ours, try Fixtures.tensor(trace, p + second), "\(label) step \(i) \(second)", scale: tolerance)
            } else {
                XCTAssertNil(out.denoised, "\(label) step \(i): diffusers returns no second output")
            }
            sample = out.prevSample  // our own trajectory, as the engine runs it
        }

        let at = try trace.floats("add_noise.timestep")[0]
        let noisy = try scheduler.addNoise(original: try Fixtures.tensor(trace, "add_noise.original"),
                                           noise: try Fixtures.tensor(trace, "add_noise.noise"), timestep: at)
        assertSchedulerParity(noisy, try Fixtures.tensor(trace, "add_noise.result"), "\(label) add_noise at \(at)", scale: tolerance)
    }

    static func alphasCumprod(_ s: any Scheduler) throws -> [Float] {
        switch s {
        case let s as EulerDiscreteScheduler: return s.alphasCumprod
        case let s as EulerAncestralDiscreteScheduler: return s.alphasCumprod
        case let s as DDIMScheduler: return s.alphasCumprod
        case let s as LCMScheduler: return s.alphasCumprod
        case let s as TCDScheduler: return s.alphasCumprod
        default: throw ModelError.invalidInput(name: "scheduler", reason: "\(type(of: s)) has no alphas_cumprod")
        }
    }

    // MARK: - Schedules given in docs/ARCHITECTURE.md#schedulers

    func testReferenceTimestepSchedules() throws {
        let dir = Fixtures.path("schedulers", "euler_turbo_4steps")
        var euler = try SchedulerFactory.load(directory: dir)
        try euler.setTimesteps(1)
        XCTAssertEqual(euler.timesteps, [999])
        try euler.setTimesteps(4)
        XCTAssertEqual(euler.timesteps, [999, 749, 499, 249])

        var lcm = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "lcm_4steps"))
        try lcm.setTimesteps(4)
        XCTAssertEqual(lcm.timesteps, [999, 759, 499, 259])

        var ddim = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "ddim_trailing_4steps_alpha1"))
        try ddim.setTimesteps(3)
        XCTAssertEqual(ddim.timesteps, [999, 666, 332])  // round half to even, as NumPy
    }

    func testFluxShiftIsComputedFromTheConfig() throws {
        // The fixtures' μ came from diffusers' calculate_shift (Flux pipeline) for 256 and
        // 1024 tokens; ours must give the same double.
        for (name, tokens) in [("flow_dynamic_mu_4steps", 256), ("flow_dynamic_flux_sigmas_4steps", 1024)] {
            let dir = Fixtures.path("schedulers", name)
            let flow = try XCTUnwrap(try SchedulerFactory.load(directory: dir) as? FlowMatchEulerDiscreteScheduler)
            guard case .object(let args)? = try ConfigReader(file: dir + "/case.json").raw("set_timesteps") else {
                return XCTFail("\(name): case.json has no set_timesteps")
            }
            let mu = try XCTUnwrap(try ConfigReader(object: args, file: dir).optionalDouble("mu"))
            XCTAssertEqual(flow.calculateShift(imageSeqLen: tokens), mu, "\(name)")
        }
        let flux = try XCTUnwrap(try SchedulerFactory.load(directory: Fixtures.path("schedulers", "flow_dynamic_mu_4steps"))
            as? FlowMatchEulerDiscreteScheduler)
        // Slope (1.15 − 0.5)/(4096 − 256) = 0.65/3840, diffusers' value (not 0.66/3840).
        XCTAssertEqual(flux.calculateShift(imageSeqLen: 4096), 1.15, accuracy: 1e-12)
        XCTAssertEqual(flux.calculateShift(imageSeqLen: 1024) - flux.calculateShift(imageSeqLen: 256), 0.65 / 3840 * 768, accuracy: 1e-12)
    }

    // MARK: - Config defaults (keys absent → diffusers' __init__ defaults)

    private var tmp: String!

    override func setUpWithError() throws {
        tmp = NSTemporaryDirectory() + "stylize-schedulers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: tmp)
    }

    private func config(_ json: String, _ name: String = "scheduler_config.json") throws -> String {
        let path = tmp + "/" + name
        try Data(json.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    func testAbsentKeysTakeDiffusersDefaults() throws {
        let euler = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "EulerDiscreteScheduler"}"#))
            as? EulerDiscreteScheduler)
        XCTAssertEqual(euler.numTrainTimesteps, 1000)
        XCTAssertEqual(euler.predictionType, .epsilon)
        XCTAssertEqual(euler.timestepSpacing, "linspace")
        XCTAssertEqual(euler.stepsOffset, 0)
        XCTAssertFalse(euler.finalSigmaIsMin)
        // linear 1e-4 … 0.02: ᾱ₀ = 1 − 1e-4.
        XCTAssertEqual(euler.alphasCumprod[0], 1 - 0.0001, accuracy: 1e-7)

        let ancestral = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "EulerAncestralDiscreteScheduler"}"#))
            as? EulerAncestralDiscreteScheduler)
        XCTAssertEqual(ancestral.timestepSpacing, "linspace")
        XCTAssertEqual(ancestral.predictionType, .epsilon)

        let ddim = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "DDIMScheduler"}"#)) as? DDIMScheduler)
        XCTAssertEqual(ddim.timestepSpacing, "leading")
        XCTAssertTrue(ddim.clipSample)
        XCTAssertEqual(ddim.clipSampleRange, 1)
        XCTAssertEqual(ddim.finalAlphaCumprod, 1)
        XCTAssertEqual(ddim.eta, 0)
        XCTAssertNil(ddim.sigmas)
        XCTAssertEqual(ddim.initNoiseSigma, 1)

        let lcm = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "LCMScheduler"}"#)) as? LCMScheduler)
        XCTAssertEqual(lcm.originalInferenceSteps, 50)
        XCTAssertEqual(lcm.timestepScaling, 10)
        XCTAssertFalse(lcm.clipSample)
        XCTAssertEqual(lcm.finalAlphaCumprod, 1)
        // scaled_linear 0.00085 … 0.012: ᾱ₀ = 1 − 0.00085.
        XCTAssertEqual(lcm.alphasCumprod[0], 1 - 0.00085, accuracy: 1e-7)

        let tcd = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "TCDScheduler"}"#)) as? TCDScheduler)
        XCTAssertEqual(tcd.gamma, 0.3)
        XCTAssertEqual(tcd.originalInferenceSteps, 50)

        let flow = try XCTUnwrap(try SchedulerFactory.make(configFile: config(#"{"_class_name": "FlowMatchEulerDiscreteScheduler"}"#))
            as? FlowMatchEulerDiscreteScheduler)
        XCTAssertEqual(flow.shift, 1)
        XCTAssertFalse(flow.useDynamicShifting)
        XCTAssertEqual(flow.baseShift, 0.5)
        XCTAssertEqual(flow.maxShift, 1.15)
        XCTAssertEqual(flow.baseImageSeqLen, 256)
        XCTAssertEqual(flow.maxImageSeqLen, 4096)
        XCTAssertEqual(flow.timeShiftType, "exponential")
        XCTAssertNil(flow.shiftTerminal)
        XCTAssertEqual(flow.predictionType, .flow)
        XCTAssertEqual(flow.initNoiseSigma, 1)
    }

    func testNullAndUnknownKeysAreTolerated() throws {
        // Real configs carry keys other classes use, and nulls for unset options.
        let path = try config(#"{"_class_name": "EulerDiscreteScheduler", "trained_betas": null, "skip_prk_steps": true, "#
            + #""clip_sample": false, "timestep_spacing": "trailing", "_diffusers_version": "0.24.0"}"#)
        var s = try SchedulerFactory.make(configFile: path)
        try s.setTimesteps(2)
        XCTAssertEqual(s.timesteps, [999, 499])
    }

    // MARK: - Errors name the file and the value

    func testUnknownClassNameIsNamed() throws {
        let path = try config(#"{"_class_name": "PNDMScheduler"}"#)
        assertThrows(try SchedulerFactory.make(configFile: path), contains: [path, "_class_name", "PNDMScheduler", "EulerDiscreteScheduler"])
        let missing = try config(#"{"beta_start": 0.001}"#, "missing.json")
        assertThrows(try SchedulerFactory.make(configFile: missing), contains: [missing, "_class_name"])
    }

    func testUnsupportedOptionsAreNamed() throws {
        let cases: [(String, [String])] = [
            (#"{"_class_name": "DDIMScheduler", "beta_schedule": "sigmoid"}"#, ["beta_schedule", "sigmoid"]),
            (#"{"_class_name": "EulerDiscreteScheduler", "beta_schedule": "exp"}"#, ["beta_schedule", "exp"]),
            (#"{"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true}"#, ["use_karras_sigmas"]),
            (#"{"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"}"#, ["interpolation_type", "log_linear"]),
            (#"{"_class_name": "EulerAncestralDiscreteScheduler", "prediction_type": "sample"}"#, ["prediction_type", "sample"]),
            (#"{"_class_name": "LCMScheduler", "prediction_type": "flow"}"#, ["prediction_type", "flow"]),
            (#"{"_class_name": "DDIMScheduler", "timestep_spacing": "karras"}"#, ["timestep_spacing", "karras"]),
            (#"{"_class_name": "DDIMScheduler", "thresholding": true}"#, ["thresholding"]),
            (#"{"_class_name": "FlowMatchEulerDiscreteScheduler", "invert_sigmas": true}"#, ["invert_sigmas"]),
            (#"{"_class_name": "FlowMatchEulerDiscreteScheduler", "time_shift_type": "cosine"}"#, ["time_shift_type", "cosine"]),
            (#"{"_class_name": "DDIMScheduler", "num_train_timesteps": 10, "trained_betas": [0.1, 0.2]}"#, ["trained_betas"]),
            (#"{"_class_name": "DDIMScheduler", "beta_start": "small"}"#, ["beta_start"]),
        ]
        for (i, (json, fragments)) in cases.enumerated() {
            let path = try config(json, "bad\(i).json")
            assertThrows(try SchedulerFactory.make(configFile: path), contains: [path] + fragments)
        }
    }

    func testMissingConfigIsNamed() {
        assertThrows(try SchedulerFactory.load(directory: tmp), contains: [tmp + "/scheduler_config.json", "scheduler config"])
    }

    func testLoadFindsTheSchedulerFolderOfAPipeline() throws {
        try FileManager.default.createDirectory(atPath: tmp + "/scheduler", withIntermediateDirectories: true)
        _ = try config(#"{"_class_name": "LCMScheduler"}"#, "scheduler/scheduler_config.json")
        let s = try SchedulerFactory.load(directory: tmp)
        XCTAssertTrue(s is LCMScheduler)
        XCTAssertEqual(s.configFile, tmp + "/scheduler/scheduler_config.json")
    }

    func testInvalidCallsAreErrorsNotCrashes() throws {
        var euler = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "euler_a_turbo_4steps"))
        let x = Tensor(zeros: [1, 4, 2, 2])
        assertThrows(try euler.step(modelOutput: x, timestep: 999, sample: x, noise: x), contains: ["setTimesteps"])
        try euler.setTimesteps(4)
        assertThrows(try euler.step(modelOutput: x, timestep: 500, sample: x, noise: x), contains: ["timestep", "500"])
        assertThrows(try euler.step(modelOutput: x, timestep: 999, sample: x, noise: nil), contains: ["noise", "999"])
        assertThrows(try euler.step(modelOutput: Tensor(zeros: [1, 4, 2, 3]), timestep: 999, sample: x, noise: x),
                     contains: ["modelOutput", "[1, 4, 2, 3]"])
        assertThrows(try euler.setTimesteps(4, mu: 1.0), contains: ["mu"])
        // The last ancestral step has σ_up = 0 and needs no noise.
        XCTAssertFalse(try euler.stepUsesNoise(at: 249))
        XCTAssertNoThrow(try euler.step(modelOutput: x, timestep: 249, sample: x, noise: nil))

        var lcm = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "lcm_4steps"))
        assertThrows(try lcm.setTimesteps(51), contains: ["51"])
        assertThrows(try lcm.setTimesteps(4, options: TimestepOptions(strength: 0)), contains: ["strength"])
        try lcm.setTimesteps(4)
        assertThrows(try lcm.step(modelOutput: x, timestep: 999, sample: x, noise: nil), contains: ["noise"])
        XCTAssertNoThrow(try lcm.step(modelOutput: x, timestep: 259, sample: x, noise: nil))
        assertThrows(try lcm.addNoise(original: x, noise: x, timestep: 1000), contains: ["timestep", "1000"])

        var flux = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "flow_dynamic_mu_4steps"))
        assertThrows(try flux.setTimesteps(4), contains: ["mu", "use_dynamic_shifting", "scheduler_config.json"])
        assertThrows(try flux.setTimesteps(4, options: TimestepOptions(mu: 1, sigmas: [1, 0.5])), contains: ["sigmas"])

        var tcd = try XCTUnwrap(try SchedulerFactory.load(directory: Fixtures.path("schedulers", "tcd_4steps_gamma0p3")) as? TCDScheduler)
        tcd.gamma = 1.5
        try tcd.setTimesteps(4)
        assertThrows(try tcd.step(modelOutput: x, timestep: 999, sample: x, noise: x), contains: ["gamma"])
    }

    func testShapesAreKeptInAnyLayout() throws {
        // Elementwise: an NHWC tensor comes back NHWC.
        var ddim = try SchedulerFactory.load(directory: Fixtures.path("schedulers", "ddim_trailing_4steps_alpha1"))
        try ddim.setTimesteps(4)
        let nhwc = Tensor(shape: [1, 3, 2, 4], data: (0..<24).map { Float($0) / 24 })
        let out = try ddim.step(modelOutput: nhwc, timestep: 999, sample: nhwc, noise: nil)
        XCTAssertEqual(out.prevSample.shape, [1, 3, 2, 4])
        XCTAssertEqual(try ddim.addNoise(original: nhwc, noise: nhwc, timestep: 10).shape, [1, 3, 2, 4])
    }
}

/// The scheduler criterion: max |ours − reference| ≤ 1e-5 · (1 + max |reference|), or a
/// case's own `scale` where case.json gives one for ill-conditioned float32 arithmetic.
func assertSchedulerParity(_ ours: Tensor, _ reference: Tensor, _ label: String, scale: Float = 1e-5,
                           file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(ours.shape, reference.shape, "\(label): shape", file: file, line: line)
    guard ours.shape == reference.shape else { return }
    let err = ours.maxAbsDifference(reference)
    let tolerance = scale * (1 + reference.maxAbs)
    XCTAssertLessThanOrEqual(err, tolerance, "\(label): max abs error \(err) > \(tolerance)", file: file, line: line)
    XCTAssertFalse(ours.data.contains { !$0.isFinite }, "\(label): non-finite output", file: file, line: line)
}

/// Schedule tables: per-value relative error.
func assertClose(_ ours: [Float], _ reference: [Float], _ label: String, relative: Float,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(ours.count, reference.count, "\(label): count", file: file, line: line)
    guard ours.count == reference.count else { return }
    var worst: Float = 0
    for (a, b) in zip(ours, reference) where a != b {
        worst = max(worst, abs(a - b) / max(abs(b), Float.leastNormalMagnitude))
    }
    XCTAssertLessThanOrEqual(worst, relative, "\(label): relative error \(worst)", file: file, line: line)
}
