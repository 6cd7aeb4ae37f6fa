import Foundation

extension ControlNetLLLite {
    /// A random-weight LLLite for `denoiser`, as sd-scripts would create it for the chosen
    /// blocks (attn1 q/k/v and attn2 q of every transformer block), with each module's
    /// depth set by its block's token grid. Unlike sd-scripts, `up` is random too, so the
    /// adapter acts (benchmarks and plumbing tests need no training).
    /// Weights are uniform in ±1/sqrt(fan_in) (PyTorch's default).
    public static func randomWeights(denoiser: any Denoiser, imageDownscale: Int, blocks: LLLiteBlocks,
                                     condEmbDim: Int, mlpDim: Int, seed: UInt64) throws -> SafeTensorsWriter {
        guard condEmbDim >= 2, condEmbDim % 2 == 0, mlpDim >= 1 else {
            throw ModelError.invalidInput(name: "cond_emb_dim", reason: "must be even and ≥ 2 (is \(condEmbDim)), mlp_dim ≥ 1 (is \(mlpDim))")
        }
        var rng = SplitMix64(seed: seed)
        var writer = SafeTensorsWriter()
        let half = condEmbDim / 2
        var count = 0
        for linear in denoiser.hookableLinears where blocks.includes(linear.block) {
            let grid = imageDownscale * linear.latentDownscale
            guard let depth = [8: 1, 16: 2, 32: 3][grid] else { continue }  // no LLLite depth reaches this grid
            let name = LLLiteTarget.moduleName(linear: linear, layersPerBlock: denoiser.layersPerBlock)
            func add(_ key: String, _ shape: [Int], fanIn: Int) {
                let bound = 1 / Float(fanIn).squareRoot()
                writer.items.append(.init(name: "\(name).\(key)", shape: shape,
                                          values: .f32((0..<shape.reduce(1, *)).map { _ in rng.uniform(-bound, bound) })))
            }
            func conv(_ i: Int, _ cin: Int, _ cout: Int, _ k: Int) {
                add("conditioning1.\(i).weight", [cout, cin, k, k], fanIn: cin * k * k)
                add("conditioning1.\(i).bias", [cout], fanIn: cin * k * k)
            }
            conv(0, 3, half, 4)
            switch depth {
            case 1: conv(2, half, condEmbDim, 2)
            case 2: conv(2, half, condEmbDim, 4)
            default: conv(2, half, half, 4); conv(4, half, condEmbDim, 2)
            }
            for (layer, inF, outF) in [("down", linear.inFeatures, mlpDim), ("mid", mlpDim + condEmbDim, mlpDim),
                                       ("up", mlpDim, linear.inFeatures)] {
                add("\(layer).0.weight", [outF, inF], fanIn: inF)
                add("\(layer).0.bias", [outF], fanIn: inF)
            }
            count += 1
        }
        guard count > 0 else {
            throw ModelError.invalidInput(name: "blocks", reason: "no transformer block on \(blocks.rawValue) has a token grid an LLLite depth reaches (image /8, /16 or /32)")
        }
        return writer
    }
}
