import Foundation
import StylizeModels

/// Input: a tokenizer.json, a NUL byte, then UTF-8 text (JSON text holds no raw NUL, so the
/// first one splits the two). The tokenizer is loaded from the bytes; the text is encoded
/// with and without special tokens and decoded back. Anything may throw; nothing may crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let split = bytes.firstIndex(of: 0) ?? size
    let json = Data(bytes: data, count: split)
    let text = split < size ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : "a photo of a cat"
    guard let tokenizer = try? Tokenizer(tokenizerJSONData: json, file: "fuzz-tokenizer.json") else { return 0 }
    let ids = tokenizer.encode(text)
    _ = tokenizer.encode(text, addSpecialTokens: false)
    _ = tokenizer.decode(ids)
    _ = tokenizer.decode(ids, skipSpecialTokens: true)
    return 0
}
