import ArgumentParser
import Foundation
import StylizeEngine
import StylizeModels

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model folder: components, parameters, conditioning, styles, and the FLOPs of one frame.",
        discussion: """
        Loads the folder as the element does (so this also validates it) and runs one frame
        of --size through the main path with FLOP counting on: autoencoder encode, the U-Net
        steps and decode (direct convolution and plain attention FLOPs, as `bench` counts
        them). The encoder runs on the side path and is reported separately.
        """)

    @Argument(help: "Model folder.")
    var model: String
    @Option(help: "Frame size HxW for the FLOP count.")
    var size: String = "256x256"

    func run() throws {
        try reportingErrors {
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 0 else { throw ValidationError("--size must look like 256x256") }
            let engine = try StylizeEngine(modelPath: model)
            let m = engine.model
            let c = m.config
            print("model         \(m.path)")
            print("mode          \(c.mode.rawValue), \(c.steps) step(s), strength \(c.strength), scheduler \(type(of: m.scheduler).className)")
            let d = m.denoiser
            print("unet          \(d.className), in \(d.inChannels), context \(d.contextWidth), /\(d.downsamplingFactor), \(d.hookableLinears.count) hookable Linears")
            print("vae           \(m.codec.className), latent \(m.codec.latentChannels) channels, /\(m.codec.downscale)")
            print("encoder       \(m.conditioning.encoder.className), hidden \(m.conditioning.encoder.hiddenSize), layers \(c.textEncoder.hiddenLayers)")
            print("template      \(c.textEncoder.template.debugDescription)")
            print("default       \(c.defaultPrompt.debugDescription)")
            for s in c.styles { print("style         \(s.name): \(s.prompts.prefix(3).joined(separator: " | "))") }
            var settings = engine.modelDefaults  // the model's working scale too, as the element
            settings.prompt = c.defaultPrompt
            settings.refreshInterval = 0
            try engine.start(settings: settings)
            defer { engine.stop() }
            let frame = Tensor(zeros: [1, parts[0], parts[1], 3])
            _ = try engine.process(frame, settings: settings)  // first conditioning outside the count
            let flops = try FlopCounter.count { _ = try engine.process(frame, settings: settings) }
            print(String(format: "per frame     %.3f GFLOP at %dx%d (autoencoder + U-Net; the encoder runs on the side path)",
                         Double(flops) / 1e9, parts[0], parts[1]))
        }
    }
}
