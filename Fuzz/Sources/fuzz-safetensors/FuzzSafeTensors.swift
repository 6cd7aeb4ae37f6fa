import Foundation
import StylizeModels

/// Input: one selector byte, then the file. Selector even: a safetensors file
/// (SafeTensorsFile(data:path:), then every tensor read back); odd: a
/// `*.safetensors.index.json` (SafeTensorsWeightSource.parseShardIndex).
/// Anything may throw; nothing may crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size > 0 else { return 0 }
    let body = Data(bytes: data + 1, count: size - 1)
    if data[0] & 1 == 0 {
        guard let file = try? SafeTensorsFile(data: body, path: "fuzz.safetensors") else { return 0 }
        for name in file.names {
            _ = try? file.floats(name)
            _ = try? file.int64s(name)
        }
    } else {
        _ = try? SafeTensorsWeightSource.parseShardIndex(body, file: "fuzz.safetensors.index.json")
    }
    return 0
}
