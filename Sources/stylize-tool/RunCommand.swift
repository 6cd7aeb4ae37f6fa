import ArgumentParser
import Foundation
import StylizeModels

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one model component on tensors from a safetensors file.",
        subcommands: [RunUNet.self, RunVAEEncode.self, RunVAEDecode.self, RunTextEncoder.self])
}

struct ComponentIO: ParsableArguments {
    @Option(help: "Component folder (config.json + *.safetensors).")
    var model: String
    @Option(help: "Input safetensors file.")
    var input: String
    @Option(help: "Output safetensors file to write.")
    var output: String
    @Option(help: "Threads for the numeric kernels (default: all cores).")
    var threads: Int?

    func applyThreads() {
        if let threads {
            ThreadBudget.threads = threads
        }
    }

    func tensor(_ file: SafeTensorsFile, _ name: String, rank: Int? = nil) throws -> Tensor {
        guard let e = file.entries[name] else { throw ModelError.missingTensor(file: file.path, tensor: name) }
        if let rank, e.shape.count != rank {
            throw ModelError.invalidInput(name: name, reason: "\(file.path): has shape \(e.shape), expected rank \(rank)")
        }
        return Tensor(shape: e.shape, data: try file.floats(name))
    }

    func optionalTensor(_ file: SafeTensorsFile, _ name: String) throws -> Tensor? {
        file.entries[name] == nil ? nil : try tensor(file, name)
    }
}

struct RunUNet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unet",
        abstract: "UNet2DConditionModel forward pass.",
        discussion: """
        IN holds sample [B,C,H,W] f32, timestep [B] (f32 or i64), encoder_hidden_states [B,T,D],
        and when the config needs them time_ids / text_embeds (addition_embed_type "text_time")
        and timestep_cond (time_cond_proj_dim). OUT holds sample [B,C,H,W] f32.
        With --control FILE (a ControlNet-LLLite), IN also holds control_image [B,3,H',W'] (or
        [1,3,H',W'], shared by the batch), fed to the conditioning network as it is (sd-scripts
        feeds images scaled to [-1, 1]), and optionally control_multiplier (scalar, default 1).
        Every module in the file is applied (down, mid and up blocks alike).
        """)
    @OptionGroup var io: ComponentIO
    @Option(help: "ControlNet-LLLite weights (.safetensors) to attach.")
    var control: String?
    @Option(help: "Pixels per latent cell of the model's autoencoder (checks each LLLite module's token grid).")
    var imageDownscale: Int = 8

    func run() throws {
        try reportingErrors {
            io.applyThreads()
            let unet = try ComponentRegistry.load(directory: io.model, as: (any Denoiser).self, role: "denoiser")
            let file = try SafeTensorsFile(path: io.input)
            var inputs = DenoiserInputs(
                sample: Tensor.fromNCHW(try io.tensor(file, "sample", rank: 4)),
                timesteps: try file.floats("timestep"),
                encoderHiddenStates: try io.tensor(file, "encoder_hidden_states", rank: 3),
                timestepCond: try io.optionalTensor(file, "timestep_cond"),
                textEmbeds: try io.optionalTensor(file, "text_embeds"),
                timeIds: try io.optionalTensor(file, "time_ids"))
            if let control {
                let adapter = try ControlNetLLLite(file: control, denoiser: unet, imageDownscale: imageDownscale, blocks: .all)
                let image = Tensor.fromNCHW(try io.tensor(file, "control_image", rank: 4))
                let multiplier = file.entries["control_multiplier"] == nil ? 1 : try file.floats("control_multiplier")[0]
                inputs.linearHooks = try adapter.condition(images: image, latentHeight: inputs.sample.h, latentWidth: inputs.sample.w)
                    .hooks(multiplier: multiplier)
            }
            let out = try unet(inputs)
            try SafeTensorsWriter(items: [.init(name: "sample", tensor: out.toNCHW())]).write(to: io.output)
        }
    }
}

struct RunVAEEncode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-encode",
        abstract: "AutoencoderTiny encode: image [B,3,H,W] in [-1,1] → latent (diffusers encode(x).latents).")
    @OptionGroup var io: ComponentIO

    func run() throws {
        try reportingErrors {
            io.applyThreads()
            let vae = try ComponentRegistry.load(directory: io.model, as: (any LatentCodec).self, role: "latent codec")
            let image = Tensor.fromNCHW(try io.tensor(SafeTensorsFile(path: io.input), "image", rank: 4))
            let latent = try vae.encode(image)
            try SafeTensorsWriter(items: [.init(name: "latent", tensor: latent.toNCHW())]).write(to: io.output)
        }
    }
}

struct RunVAEDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vae-decode",
        abstract: "AutoencoderTiny decode: latent [B,C,h,w] → image [B,3,H,W] (diffusers decode(z).sample).")
    @OptionGroup var io: ComponentIO

    func run() throws {
        try reportingErrors {
            io.applyThreads()
            let vae = try ComponentRegistry.load(directory: io.model, as: (any LatentCodec).self, role: "latent codec")
            let latent = Tensor.fromNCHW(try io.tensor(SafeTensorsFile(path: io.input), "latent", rank: 4))
            let image = try vae.decode(latent)
            try SafeTensorsWriter(items: [.init(name: "image", tensor: image.toNCHW())]).write(to: io.output)
        }
    }
}

struct RunTextEncoder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "text-encoder",
        abstract: "CLIPTextModel, Qwen3 or Qwen3-VL encoder forward pass (all hidden states).",
        discussion: """
        IN holds input_ids [B,T] (i64), optionally attention_mask [B,T] (1 keep, 0 pad), and for
        Qwen3-VL pixel_values [N, C·2·P·P] with image_grid_thw [images, 3] (i64) as the Qwen2-VL /
        Qwen3-VL image processor makes them. OUT holds last_hidden_state [B,T,D] and hidden_states
        [L+1,B,T,D] (embeddings first, as transformers' output_hidden_states), and for CLIP
        pooler_output [B,D].
        """)
    @OptionGroup var io: ComponentIO

    func run() throws {
        try reportingErrors {
            io.applyThreads()
            let encoder = try TextEncoder.load(directory: io.model)
            let file = try SafeTensorsFile(path: io.input)
            let tokens = try tokenBatch(file)
            var images: VisionInput? = nil
            if file.entries["pixel_values"] != nil {
                let grids = try file.int64s("image_grid_thw").map(Int.init)
                guard grids.count % 3 == 0 else {
                    throw ModelError.invalidInput(name: "image_grid_thw", reason: "must be [images, 3]")
                }
                images = VisionInput(
                    pixelValues: try io.tensor(file, "pixel_values", rank: 2),
                    grids: stride(from: 0, to: grids.count, by: 3).map { GridTHW(t: grids[$0], h: grids[$0 + 1], w: grids[$0 + 2]) })
            }
            let out = try encoder(tokens, images: images)
            var writer = SafeTensorsWriter()
            writer.add("last_hidden_state", out.lastHiddenState)
            writer.add("hidden_states", out.stackedHiddenStates)
            if let pooled = out.pooled { writer.add("pooler_output", pooled) }
            try writer.write(to: io.output)
        }
    }

    private func tokenBatch(_ file: SafeTensorsFile) throws -> TokenBatch {
        guard let shape = file.entries["input_ids"]?.shape, shape.count == 2 else {
            throw ModelError.invalidInput(name: "input_ids", reason: "\(file.path): missing or not [B, T]")
        }
        func rows(_ name: String) throws -> [[Int]] {
            let flat = try file.int64s(name).map(Int.init)
            guard flat.count == shape[0] * shape[1] else {
                throw ModelError.invalidInput(name: name, reason: "\(file.path): does not have input_ids' shape \(shape)")
            }
            return (0..<shape[0]).map { Array(flat[($0 * shape[1])..<(($0 + 1) * shape[1])]) }
        }
        return TokenBatch(ids: try rows("input_ids"), attentionMask: file.entries["attention_mask"] == nil ? nil : try rows("attention_mask"))
    }
}
