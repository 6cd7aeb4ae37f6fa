import ArgumentParser
import Foundation
import StylizeEngine
import StylizeModels

struct InitLLLite: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init-lllite",
        abstract: "Write a random-weight ControlNet-LLLite for a model folder (benchmarks and plumbing tests).",
        discussion: """
        One module per self-attention q/k/v and cross-attention q of every transformer block on
        the chosen blocks, named as kohya-ss sd-scripts names them
        (lllite_unet_input_blocks_N_1_transformer_blocks_K_attn1_to_q.down.0.weight, …), with the
        conditioning depth each block's token grid needs. Random, untrained weights: the adapter
        changes the output without meaning anything. Real adapters come from sd-scripts'
        train_control_net_lllite / sdxl_train_control_net_lllite.
        """)

    @Option(help: "Model folder whose U-Net the adapter is made for.")
    var model: String
    @Option(help: "Output .safetensors file.")
    var out: String
    @Option(help: "Blocks carrying modules: down, down+mid or all.")
    var blocks: String = "down"
    @Option(help: "Conditioning embedding width (sd-scripts' cond_emb_dim).")
    var condEmbDim: Int = 32
    @Option(help: "Width of the per-Linear MLP (sd-scripts' network_dim).")
    var mlpDim: Int = 32
    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        try reportingErrors {
            guard let b = LLLiteBlocks(rawValue: blocks) else { throw ValidationError("--blocks must be down, down+mid or all") }
            let m = try StylizeModel(path: model)
            let writer = try ControlNetLLLite.randomWeights(denoiser: m.denoiser, imageDownscale: m.codec.downscale, blocks: b,
                                                            condEmbDim: condEmbDim, mlpDim: mlpDim, seed: seed)
            try writer.write(to: out)
            let loaded = try ControlNetLLLite(file: out, denoiser: m.denoiser, imageDownscale: m.codec.downscale, blocks: b)
            let depths = Dictionary(grouping: loaded.modules, by: \.depth).mapValues(\.count).sorted { $0.key < $1.key }
            print("wrote \(loaded.modules.count) LLLite modules (depth: count \(depths.map { "\($0.key): \($0.value)" }.joined(separator: ", "))), cond_emb_dim \(condEmbDim), mlp_dim \(mlpDim) to \(out)")
        }
    }
}
