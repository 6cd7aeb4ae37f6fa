import Foundation
import StylizeEngine
import StylizeModels

/// Input: one selector byte, then a JSON file. The selector picks the reader:
/// 0 UNet2DConditionConfig, 1 AutoencoderTinyConfig, 2 CLIPTextConfig, 3 Qwen3TextConfig,
/// 4 Qwen3VLConfig, 5 stylize.json (CLIP model), 6 stylize.json (Qwen3 model).
/// Anything may throw; nothing may crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let body = Data(bytes: data + 1, count: size - 1)
    switch data[0] % 7 {
    case 5, 6:
        _ = try? StylizeConfig(data: body, file: "stylize.json", textEncoderDefaults: data[0] % 7 == 5 ? .stableDiffusionCLIP : ConditioningSpec())
    default:
        guard let r = try? ConfigReader(data: body, file: "config.json") else { return 0 }
        switch data[0] % 7 {
        case 0:
            if let c = try? UNet2DConditionConfig(r) { _ = c.timeEmbedDim }
        case 1:
            if let c = try? AutoencoderTinyConfig(r) { _ = c.downscale }
        case 2: _ = try? CLIPTextConfig(r)
        case 3: _ = try? Qwen3TextConfig(r)
        default: _ = try? Qwen3VLConfig(r)
        }
    }
    return 0
}
