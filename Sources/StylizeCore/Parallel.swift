import Foundation

/// The thread budget for Swift-side kernels (element-wise ops, im2col, softmax).
/// GEMMs use OpenBLAS's own threads; see `BLAS.threads`.
public enum ThreadBudget {
    nonisolated(unsafe) public static var threads: Int = max(1, min(8, ProcessInfoCores.count))
}

enum ProcessInfoCores {
    static let count: Int = {
        #if os(Linux)
        return Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        #else
        return 1
        #endif
    }()
}

/// Splits 0..<count into at most `ThreadBudget.threads` contiguous ranges and runs them
/// concurrently. Small jobs run inline: waking threads costs more than it saves.
@inline(__always)
public func parallelRanges(_ count: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    let parts = min(ThreadBudget.threads, max(1, count / max(1, minPerThread)))
    if parts <= 1 {
        body(0..<count)
        return
    }
    let chunk = (count + parts - 1) / parts
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = p * chunk
        let hi = min(count, lo + chunk)
        if lo < hi { body(lo..<hi) }
    }
}
