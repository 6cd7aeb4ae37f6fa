import ArgumentParser
import Foundation
import StylizeModels

struct InitRandom: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-random",
        abstract: "Write a random-weight component folder for a config (benchmarks need no download).",
        discussion: """
        The class comes from the config: diffusers' _class_name (UNet2DConditionModel,
        AutoencoderTiny) or transformers' model_type / architectures (CLIPTextModel, Qwen3Model,
        Qwen3VLModel). Writes OUT/config.json and OUT/diffusion_pytorch_model.safetensors
        (diffusers) or OUT/model.safetensors (transformers) with every tensor the architecture
        needs, named as the reference library names them. Weights are uniform in ±1/sqrt(fan_in)
        like PyTorch's default initialisation; norms start near 1 / 0.
        """)

    @Option(help: "A diffusers config.json.")
    var config: String
    @Option(help: "Output folder (created if needed).")
    var out: String
    @Option(help: "Random seed.")
    var seed: UInt64 = 0
    @Flag(help: "Store weights as fp16 (as most checkpoints ship).")
    var fp16 = false

    func run() throws {
        try reportingErrors {
            let cls = try ComponentRegistry.detect(configFile: config)
            let source = RandomWeightSource(seed: seed)
            _ = try cls.init(configFile: config, weights: Weights(source))
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let target = out + "/config.json"
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.copyItem(atPath: config, toPath: target)
            try source.write(to: out + "/" + cls.registration.weightsFileName, half: fp16)
            // An image processor config next to the model config travels with it.
            let preprocessor = URL(fileURLWithPath: config).deletingLastPathComponent().appendingPathComponent("preprocessor_config.json").path
            if FileManager.default.fileExists(atPath: preprocessor) {
                try? FileManager.default.removeItem(atPath: out + "/preprocessor_config.json")
                try FileManager.default.copyItem(atPath: preprocessor, toPath: out + "/preprocessor_config.json")
            }
            let parameters = source.recorded.reduce(0) { $0 + $1.values.count }
            print("wrote \(cls.registration.className) with \(source.recorded.count) tensors, \(parameters) parameters to \(out)")
        }
    }
}
