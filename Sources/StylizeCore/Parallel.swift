import Foundation
import Synchronization

/// The one thread budget of the engine: Swift kernels (element-wise ops, im2col,
/// softmax) and GEMMs (`BLAS.sgemm` splits large products itself; OpenBLAS runs
/// single-threaded) both run on at most `threads` threads, and never at once.
public enum ThreadBudget {
    /// The process-wide default, for threads that did not choose their own (`with`).
    public static var threads: Int {
        get { processWide.load(ordering: .relaxed) }
        set { processWide.store(newValue, ordering: .relaxed) }
    }
    private static let processWide = Atomic<Int>(max(1, min(8, ProcessInfoCores.count)))

    /// Threads the calling thread may use: its own budget (`with`, `serially`), else `threads`.
    @inline(__always)
    public static var available: Int {
        guard let own = pthread_getspecific(ownKey) else { return threads }
        return Int(bitPattern: own)
    }

    /// Runs `body` with `n` threads for its kernels and GEMMs (n ≤ 0: the process-wide
    /// default): one stream's budget, without changing any other thread's.
    public static func with<R>(threads n: Int, _ body: () throws -> R) rethrows -> R {
        guard n > 0 else { return try body() }
        let was = pthread_getspecific(ownKey)
        pthread_setspecific(ownKey, UnsafeRawPointer(bitPattern: n))
        defer { pthread_setspecific(ownKey, was) }
        return try body()
    }

    /// Runs `body` with every kernel and GEMM on the calling thread alone: for the
    /// conditioning side thread, whose priority would not carry over to pool threads.
    public static func serially<R>(_ body: () throws -> R) rethrows -> R {
        try with(threads: 1, body)
    }

    private static let ownKey: pthread_key_t = {
        var key = pthread_key_t()
        // Not inside precondition(): -Ounchecked builds drop its condition, call included.
        let status = pthread_key_create(&key, nil)
        if status != 0 { fatalError("ThreadBudget: pthread_key_create failed (\(status))") }
        return key
    }()
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
///
/// `body` runs on several threads at once, one call per range, and must write only what
/// its own range owns. That is not checked by the compiler: kernels hand raw pointers to
/// their ranges, and `body` is deliberately not `@Sendable` (see `runRanges`).
@inline(__always)
public func parallelRanges(_ count: Int, minPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
    runRanges(count, parts: min(ThreadBudget.available, max(1, count / max(1, minPerThread))), body)
}

/// `parallelRanges` for items that are whole jobs (an attention head, a Winograd pass):
/// each range runs with its kernels and GEMMs kept on its own thread
/// (`ThreadBudget.serially`), where splitting each item's small GEMMs over the threads
/// would cost more than it saves. A single range runs on the calling thread, free to split.
@inline(__always)
public func parallelLanes(_ count: Int, _ body: (Range<Int>) -> Void) {
    let parts = min(ThreadBudget.available, count)
    if parts <= 1 {
        body(0..<count)
        return
    }
    runRanges(count, parts: parts) { range in ThreadBudget.serially { body(range) } }
}

/// `parallelLanes` whose ranges each get `scratch` floats of their own (a pooled block cut
/// into lanes, taken on the calling thread before any lane starts): the pool then needs the
/// same blocks on every call, however the threads happened to interleave. Scratch taken
/// inside each lane needed one block per lane running at that moment, so a call where
/// the lanes overlapped for the first time allocated after warm-up.
@inline(__always)
public func parallelLanes(_ count: Int, scratch: Int,
                          _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    let parts = max(1, min(ThreadBudget.available, count))
    var block = TensorBuffer(uninitializedCount: parts * scratch)
    block.withUnsafeMutableBufferPointer { b in
        let base = b.baseAddress!
        if parts <= 1 {
            body(0..<count, base)
            return
        }
        let chunk = (count + parts - 1) / parts
        runRanges(count, parts: parts) { range in
            ThreadBudget.serially { body(range, base + range.lowerBound / chunk * scratch) }
        }
    }
}

@inline(__always)
private func runRanges(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
    if parts <= 1 {
        body(0..<count)
        return
    }
    let chunk = (count + parts - 1) / parts
    // Safe to share: each call gets a disjoint range (parallelRanges' contract); concurrentPerform returns after the last.
    nonisolated(unsafe) let body = body
    DispatchQueue.concurrentPerform(iterations: parts) { p in
        let lo = p * chunk
        let hi = min(count, lo + chunk)
        if lo < hi { body(lo..<hi) }
    }
}
