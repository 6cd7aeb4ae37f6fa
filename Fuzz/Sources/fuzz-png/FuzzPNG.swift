import StylizeEngine

/// Input: a PNG file for PNGCodec.decode. Anything may throw; nothing may crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    _ = try? PNGCodec.decode(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
