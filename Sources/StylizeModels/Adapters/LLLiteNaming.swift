import Foundation

/// Where one stored LLLite module attaches, parsed from its weight names. sd-scripts
/// names modules after the original Stable Diffusion blocks
/// (`lllite_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.down.0.weight`);
/// diffusers ports write the same with "__" instead of "." (or diffusers' own block
/// names, `lllite_unet_down_blocks_1_attentions_0_…`). All map onto the diffusers Linear
/// the module hooks (`down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q`).
struct LLLiteKey: Hashable {
    /// The module's name as stored (errors name it).
    let module: String
    /// conditioning1 / down / mid / up, with the Sequential index.
    let layer: String
    let index: Int
    /// weight / bias
    let parameter: String

    private static let suffix = try! NSRegularExpression(
        pattern: #"^(.+?)(?:\.|__)(conditioning1|down|mid|up)(?:\.|__)(\d+)(?:\.|__)(weight|bias)$"#)

    init?(_ key: String) {
        let range = NSRange(key.startIndex..., in: key)
        guard let m = Self.suffix.firstMatch(in: key, range: range) else { return nil }
        func group(_ i: Int) -> String { String(key[Range(m.range(at: i), in: key)!]) }
        module = group(1)
        layer = group(2)
        index = Int(group(3))!
        parameter = group(4)
    }
}

/// The diffusers Linear an LLLite module name designates, for a U-Net with
/// `layersPerBlock` resnets per down block (original-SD numbering counts each down
/// block's downsampler as one more input block).
enum LLLiteTarget {
    private static let sgm = try! NSRegularExpression(
        pattern: #"^(input_blocks|output_blocks)_(\d+)_1_(transformer_blocks_\d+_attn[12]_to_[qkv])$|^middle_block_1_(transformer_blocks_\d+_attn[12]_to_[qkv])$"#)
    private static let diffusers = try! NSRegularExpression(
        pattern: #"^(down_blocks|up_blocks)_(\d+)_attentions_(\d+)_(transformer_blocks_\d+_attn[12]_to_[qkv])$|^mid_block_attentions_(\d+)_(transformer_blocks_\d+_attn[12]_to_[qkv])$"#)

    /// nil when the name designates no attention projection in this layout.
    static func linearName(module: String, layersPerBlock: Int) -> String? {
        var name = module.replacingOccurrences(of: "__", with: "_").replacingOccurrences(of: ".", with: "_")
        guard name.hasPrefix("lllite_unet_") else { return nil }
        name.removeFirst("lllite_unet_".count)
        let range = NSRange(name.startIndex..., in: name)
        func group(_ m: NSTextCheckingResult, _ i: Int) -> String? {
            Range(m.range(at: i), in: name).map { String(name[$0]) }
        }
        // "transformer_blocks_0_attn1_to_q" → "transformer_blocks.0.attn1.to_q"
        func tail(_ s: String) -> String {
            s.replacingOccurrences(of: "transformer_blocks_", with: "transformer_blocks.")
                .replacingOccurrences(of: "_attn", with: ".attn")
                .replacingOccurrences(of: "_to_", with: ".to_")
        }
        if let m = sgm.firstMatch(in: name, range: range) {
            if let t = group(m, 4) { return "mid_block.attentions.0." + tail(t) }
            let n = Int(group(m, 2)!)!, t = tail(group(m, 3)!)
            let span = layersPerBlock + 1
            if group(m, 1) == "input_blocks" {
                // input_blocks.0 is conv_in; each down block then has L resnets and a downsampler.
                guard n >= 1, (n - 1) % span < layersPerBlock else { return nil }
                return "down_blocks.\((n - 1) / span).attentions.\((n - 1) % span).\(t)"
            }
            return "up_blocks.\(n / span).attentions.\(n % span).\(t)"
        }
        if let m = diffusers.firstMatch(in: name, range: range) {
            if let j = group(m, 5) { return "mid_block.attentions.\(j)." + tail(group(m, 6)!) }
            return "\(group(m, 1)!).\(group(m, 2)!).attentions.\(group(m, 3)!).\(tail(group(m, 4)!))"
        }
        return nil
    }

    /// sd-scripts' module name for a diffusers Linear (what `stylize-tool init-lllite` writes).
    static func moduleName(linear: HookableLinear, layersPerBlock: Int) -> String {
        let parts = linear.name.split(separator: ".")
        let inner = parts.drop(while: { $0 != "transformer_blocks" }).joined(separator: "_")
        let span = layersPerBlock + 1
        switch linear.block {
        case .down(let i): return "lllite_unet_input_blocks_\(1 + i * span + linear.attention)_1_\(inner)"
        case .mid: return "lllite_unet_middle_block_1_\(inner)"
        case .up(let i): return "lllite_unet_output_blocks_\(i * span + linear.attention)_1_\(inner)"
        }
    }
}
