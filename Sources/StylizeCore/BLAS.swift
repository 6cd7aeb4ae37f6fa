import COpenBLAS
import Foundation
import Synchronization

/// The one place that talks to OpenBLAS. Everything GEMM-shaped goes through `sgemm`
/// so FLOPs are counted in one place and the thread budget is kept in one place.
///
/// OpenBLAS itself runs single-threaded: its threaded driver mallocs a job table on
/// every call (512 KB per sgemm with Debian's build, found by counting the hot path's
/// mallocs), and its pool would compete with ThreadBudget's. `sgemm` instead splits a
/// large product into row (or column) blocks, one per budget thread.
public enum BLAS {
    /// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major.
    @inline(__always)
    public static func sgemm(
        transA: Bool = false, transB: Bool = false,
        m: Int, n: Int, k: Int,
        alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        FlopCounter.add(2 * m * n * k)
        _ = singleThreaded
        let parts = splitParts(m: m, n: n, k: k)
        if parts <= 1 {
            call(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
            return
        }
        // Safe to share: each block writes only its own rows (or columns) of C; concurrentPerform returns after the last.
        nonisolated(unsafe) let a = a, b = b, c = c
        if m >= n {
            // Blocks of whole 16-row panels keep OpenBLAS's micro-kernel on full tiles.
            let chunk = ((m + parts - 1) / parts + 15) / 16 * 16
            DispatchQueue.concurrentPerform(iterations: (m + chunk - 1) / chunk) { p in
                let lo = p * chunk, rows = min(chunk, m - lo)
                call(transA, transB, rows, n, k, alpha, transA ? a + lo : a + lo * lda, lda, b, ldb, beta, c + lo * ldc, ldc)
            }
        } else {
            let chunk = ((n + parts - 1) / parts + 15) / 16 * 16
            DispatchQueue.concurrentPerform(iterations: (n + chunk - 1) / chunk) { p in
                let lo = p * chunk, cols = min(chunk, n - lo)
                call(transA, transB, m, cols, k, alpha, a, lda, transB ? b + lo * ldb : b + lo, ldb, beta, c + lo, ldc)
            }
        }
    }

    /// Below about 4 MFLOP (tens of microseconds) waking a second thread costs more than it saves.
    @inline(__always)
    static func splitParts(m: Int, n: Int, k: Int) -> Int {
        let threads = ThreadBudget.available
        guard threads > 1, 2 * m * n * k >= 1 << 22, max(m, n) >= 32 * threads else { return 1 }
        return threads
    }

    @inline(__always)
    private static func call(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                             _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                             _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    private static let singleThreaded: Bool = {
        openblas_set_num_threads(1)
        return true
    }()

    /// Measures OpenBLAS sgemm on square matrices: the ceiling every GEMM-shaped
    /// workload is compared against. Returns GFLOP/s (median of `repeats`).
    /// OpenBLAS's own threading is used here, at the budget's thread count: the ceiling is
    /// OpenBLAS at its best, not the engine's way of calling it.
    public static func measureSgemmPeak(size: Int = 1536, repeats: Int = 5) -> Double {
        _ = singleThreaded
        openblas_set_num_threads(Int32(ThreadBudget.threads))
        defer { openblas_set_num_threads(1) }
        let count = size * size
        let a = [Float](repeating: 0.5, count: count)
        let b = [Float](repeating: 0.25, count: count)
        var c = [Float](repeating: 0, count: count)
        var times: [Double] = []
        for _ in 0..<(repeats + 1) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    c.withUnsafeMutableBufferPointer { pc in
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                    blasint(size), blasint(size), blasint(size), 1,
                                    pa.baseAddress!, blasint(size), pb.baseAddress!, blasint(size),
                                    0, pc.baseAddress!, blasint(size))
                    }
                }
            }
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        times.removeFirst()  // warm-up: thread pool start, page faults
        times.sort()
        return 2 * Double(size) * Double(size) * Double(size) / times[times.count / 2] / 1e9
    }
}

/// Counts the FLOPs of "plain" algorithms (direct convolution, plain attention) so
/// benchmarks can report effective GFLOP/s. Counting is off unless a benchmark turns it
/// on. The count is atomic: attention and narrow Winograd layers call sgemm from pool
/// threads.
public enum FlopCounter {
    public static var enabled: Bool {
        get { counting.load(ordering: .relaxed) }
        set { counting.store(newValue, ordering: .relaxed) }
    }
    private static let counting = Atomic<Bool>(false)
    private static let counted = Atomic<Int>(0)

    static var total: Int { counted.load(ordering: .relaxed) }

    @inline(__always)
    public static func add(_ flops: Int) {
        if enabled { counted.wrappingAdd(flops, ordering: .relaxed) }
    }

    /// Runs `body` once with counting on and returns the FLOPs it performed.
    public static func count(_ body: () throws -> Void) rethrows -> Int {
        let (wasEnabled, before) = (enabled, total)
        enabled = true
        defer { enabled = wasEnabled }
        try body()
        return total - before
    }
}
