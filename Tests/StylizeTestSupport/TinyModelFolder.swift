import Foundation
import StylizeEngine
import StylizeModels

/// Builds a complete, tiny model folder in a temporary directory: random-weight U-Net and
/// autoencoder (written through the same path as `stylize-tool init-random`), the
/// committed Qwen3-VL encoder and Qwen tokenizer fixtures, a scheduler and stylize.json.
public enum TinyModelFolder {
    public static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("StylizeModelsTests/Fixtures").path

    /// - Parameters: decoderChannels: the autoencoder's out_channels (12 for an affine head);
    ///   stylizeExtra: more stylize.json keys (`, "key": value`).
    public static func make(mode: ConditioningMode, scheduler: String, schedulerExtra: String = "", seed: UInt64 = 1,
                            decoderChannels: Int = 3, stylizeExtra: String = "") throws -> String {
        let dir = NSTemporaryDirectory() + "stylize-tiny-\(mode.rawValue)-\(UUID().uuidString)"
        let fm = FileManager.default
        for sub in ["unet", "vae", "scheduler"] {
            try fm.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
        }
        let inChannels = mode == .concatChannels ? 8 : 4
        try write(dir + "/unet/config.json", """
        {"_class_name": "UNet2DConditionModel", "in_channels": \(inChannels), "out_channels": 4,
         "block_out_channels": [16, 32], "layers_per_block": 1, "norm_num_groups": 8,
         "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
         "attention_head_dim": 2, "cross_attention_dim": 64}
        """)
        try write(dir + "/vae/config.json", """
        {"_class_name": "AutoencoderTiny", "encoder_block_out_channels": [8, 8, 8, 8], "decoder_block_out_channels": [8, 8, 8, 8],
         "num_encoder_blocks": [1, 1, 1, 1], "num_decoder_blocks": [1, 1, 1, 1], "latent_channels": 4,
         "out_channels": \(decoderChannels)}
        """)
        try write(dir + "/scheduler/scheduler_config.json", """
        {"_class_name": "\(scheduler)", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012,
         "beta_schedule": "scaled_linear", "timestep_spacing": "trailing"\(schedulerExtra)}
        """)
        for component in ["unet", "vae"] {
            let source = RandomWeightSource(seed: seed)
            let cls = try ComponentRegistry.detect(configFile: dir + "/\(component)/config.json")
            _ = try cls.init(configFile: dir + "/\(component)/config.json", weights: Weights(source))
            try source.write(to: dir + "/\(component)/" + cls.registration.weightsFileName, half: false)
        }
        try fm.copyItem(atPath: fixtures + "/text/qwen3_vl", toPath: dir + "/text_encoder")
        try fm.copyItem(atPath: fixtures + "/tokenizers/qwen", toPath: dir + "/tokenizer")
        try write(dir + "/stylize.json", """
        {"conditioning_mode": "\(mode.rawValue)", "default_prompt": "make it an oil painting",
         "text_encoder": {"template": "<|im_start|>user\\n{image}{prompt}<|im_end|>", "image_size": [64, 96]},
         "styles": [{"name": "oil", "prompts": ["oil painting"], "reference": "kuwahara"}]\(stylizeExtra)}
        """)
        return dir
    }

    private static func write(_ path: String, _ text: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// A deterministic test frame batch, NHWC [-1, 1].
    public static func frames(_ b: Int, _ h: Int, _ w: Int, seed: UInt64 = 3) -> Tensor {
        var rng = SplitMix64(seed: seed)
        return Tensor(shape: [b, h, w, 3], data: (0..<(b * h * w * 3)).map { _ in rng.uniform(-1, 1) })
    }
}
