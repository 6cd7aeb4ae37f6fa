import ArgumentParser
import Foundation
import StylizeEngine
import StylizeModels

struct Stylize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Restyle one PNG image through the same engine the element uses.",
        discussion: """
        Loads a model folder (see the README's "Model folders"), encodes the prompt (and,
        for a vision-aware encoder, the image) and runs the folder's conditioning mode and
        scheduler. Reads 8-bit PNG (grey, RGB, RGBA, palette); writes RGB PNG.
        """)

    @Option(help: "Model folder.")
    var model: String
    @Option(help: "What the output should look like.")
    var prompt: String
    @Option(help: "Noise seed.")
    var seed: UInt64 = 0
    @Option(help: "Denoising steps (default: the model's).")
    var steps: Int?
    @Option(help: "SDEdit strength in (0, 1] (default: the model's).")
    var strength: Float?
    @Option(help: "ControlNet-LLLite adapter: a .safetensors file, a name in the model's controlnet_lllite/, or \"\" for none (default: the model's own, stylize.json \"control\").")
    var control: String?
    @Option(help: "Control adapter multiplier, 0-2 (default: the model's, else 1).")
    var controlStrength: Float?
    @Option(help: "Threads (default: all cores).")
    var threads: Int?
    @Argument(help: "Input PNG.")
    var input: String
    @Argument(help: "Output PNG.")
    var output: String

    func run() throws {
        try reportingErrors {
            if let threads {
                ThreadBudget.threads = threads
            }
            let engine = try StylizeEngine(modelPath: model)
            var settings = StylizeSettings()
            settings.prompt = prompt
            settings.seed = seed
            settings.steps = steps ?? engine.model.config.steps
            settings.strength = strength ?? engine.model.config.strength
            settings.refreshInterval = 0
            let defaults = engine.modelDefaults
            settings.control = control ?? defaults.control
            settings.controlStrength = controlStrength ?? defaults.controlStrength
            settings.controlRefreshInterval = 1
            let failure = Locked<String?>(nil)
            engine.onControlEvent = { if case .failed(_, let message) = $0 { failure.withLock { $0 = message } } }
            try engine.start(settings: settings)
            if let failure = failure.withLock({ $0 }) { throw ModelError.invalidInput(name: "--control", reason: failure) }
            defer { engine.stop() }
            let image = try PNGCodec.read(path: input)
            let out = try StylizeEngine.processWaitingForPrompt(engine, image.tensor, settings: settings)
            try PNGCodec.write(RGBImage(tensor: out), path: output)
        }
    }
}
