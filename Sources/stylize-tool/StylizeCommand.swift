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
            try engine.start(settings: settings)
            defer { engine.stop() }
            let image = try PNGCodec.read(path: input)
            let out = try StylizeEngine.processWaitingForPrompt(engine, image.tensor, settings: settings)
            try PNGCodec.write(RGBImage(tensor: out), path: output)
        }
    }
}
