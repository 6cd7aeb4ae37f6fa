import COpenBLAS
import Foundation

/// The one place that talks to OpenBLAS. Everything GEMM-shaped goes through `sgemm`
/// so FLOPs are counted in one place and the thread budget is set in one place.
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
        cblas_sgemm(
            CblasRowMajor,
            transA ? CblasTrans : CblasNoTrans,
            transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k),
            alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }

    public static var threads: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(max(1, newValue))) }
    }

    /// Measures OpenBLAS sgemm on square matrices: the ceiling every GEMM-shaped
    /// workload is compared against. Returns GFLOP/s (median of `repeats`).
    public static func measureSgemmPeak(size: Int = 1536, repeats: Int = 5) -> Double {
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
/// on; it is only touched from the thread that drives a model.
public enum FlopCounter {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) public static var total = 0

    @inline(__always)
    public static func add(_ flops: Int) {
        if enabled { total += flops }
    }

    /// Runs `body` once with counting on and returns the FLOPs it performed.
    public static func count(_ body: () throws -> Void) rethrows -> Int {
        let (wasEnabled, before) = (enabled, total)
        enabled = true
        defer { enabled = wasEnabled }
        try body()
        let counted = total - before
        total = before
        return counted
    }
}
