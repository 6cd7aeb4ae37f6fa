#if canImport(Glibc)
import CSystem
#endif

/// The OS-level half of "no allocation on the hot path" (TensorBufferPool's statistics
/// are the other half: no tensor or scratch buffer is malloc'd after warm-up): processing
/// more frames must neither grow the memory the allocator holds from the OS nor touch
/// fresh pages.
public struct HeapProbe: Sendable {
    public let heapBytes: Int
    public let minorFaults: Int

    public static func snapshot() -> HeapProbe {
        #if canImport(Glibc)
        return HeapProbe(heapBytes: Int(stylize_heap_bytes()), minorFaults: stylize_minor_faults())
        #else
        return HeapProbe(heapBytes: 0, minorFaults: 0)
        #endif
    }

    /// (heap growth in bytes, minor page faults) since `earlier`.
    public func since(_ earlier: HeapProbe) -> (heapGrowth: Int, minorFaults: Int) {
        (heapBytes - earlier.heapBytes, minorFaults - earlier.minorFaults)
    }
}
