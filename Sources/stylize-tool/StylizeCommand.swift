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
    @Option(help: "Linear scale of the resolution the model runs at, 0.05-1 (default: the model's, stylize.json \"working\"; its max_pixels still caps it).")
    var workingScale: Float?
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
            // The model's own defaults (steps, strength, working scale, control), as the element takes them.
            var settings = engine.modelDefaults
            settings.prompt = prompt
            settings.seed = seed
            if let steps { settings.steps = steps }
            if let strength { settings.strength = strength }
            if let workingScale { settings.workingScale = min(1, max(0.05, workingScale)) }
            settings.refreshInterval = 0
            if let control { settings.control = control }
            if let controlStrength { settings.controlStrength = controlStrength }
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
