#if canImport(Glibc)
import CSystem
#endif

/// Inference allocates and frees the same large activation buffers on every call. With
/// glibc's defaults each buffer over 128 KB is a fresh mmap, so every call pays a page
/// fault per 4 KB touched (measured: seconds of system time per SD U-Net call). Raising
/// the mmap and trim thresholds keeps freed buffers in the heap for reuse.
enum MemoryTuning {
    static let configured: Bool = {
        #if canImport(Glibc)
        _ = mallopt(M_MMAP_THRESHOLD, 1 << 30)
        _ = mallopt(M_TRIM_THRESHOLD, Int32.max)
        _ = mallopt(M_TOP_PAD, 64 << 20)
        #endif
        return true
    }()
}
