import ArgumentParser
import Foundation
import StylizeModels

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one model component on tensors from a safetensors file.",
        subcommands: [RunUNet.self, RunVAEEncode.self, RunVAEDecode.self])
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
            BLAS.threads = threads
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
        """)
    @OptionGroup var io: ComponentIO

    func run() throws {
        try reportingErrors {
            io.applyThreads()
            let unet = try UNet2DConditionModel(directory: io.model)
            let file = try SafeTensorsFile(path: io.input)
            let inputs = UNetInputs(
                sample: Tensor.fromNCHW(try io.tensor(file, "sample", rank: 4)),
                timesteps: try file.floats("timestep"),
                encoderHiddenStates: try io.tensor(file, "encoder_hidden_states", rank: 3),
                timestepCond: try io.optionalTensor(file, "timestep_cond"),
                textEmbeds: try io.optionalTensor(file, "text_embeds"),
                timeIds: try io.optionalTensor(file, "time_ids"))
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
            let vae = try AutoencoderTiny(directory: io.model)
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
            let vae = try AutoencoderTiny(directory: io.model)
            let latent = Tensor.fromNCHW(try io.tensor(SafeTensorsFile(path: io.input), "latent", rank: 4))
            let image = try vae.decode(latent)
            try SafeTensorsWriter(items: [.init(name: "image", tensor: image.toNCHW())]).write(to: io.output)
        }
    }
}
