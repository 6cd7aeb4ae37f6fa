import XCTest
@testable import StylizeCore

/// `BLAS.sgemm` splits large products over the thread budget itself; every transpose
/// combination and both split directions must give what one whole call gives.
final class BLASSplitTests: XCTestCase {
    func testSplitProductsMatchTheUnsplitProduct() {
        let saved = ThreadBudget.threads
        defer { ThreadBudget.threads = saved }
        // (m, n, k): rows split (m ≥ n), columns split (n > m), ragged edges, offset leading dimensions
        for (m, n, k) in [(301, 67, 129), (40, 517, 300), (1024, 320, 320)] {
            for (transA, transB) in [(false, false), (true, false), (false, true), (true, true)] {
                let lda = (transA ? m : k) + 3, ldb = (transB ? k : n) + 5, ldc = n + 7
                let a = Reference.randomTensor([(transA ? k : m) * lda], seed: 1).data.array
                let b = Reference.randomTensor([(transB ? n : k) * ldb], seed: 2).data.array
                let c0 = Reference.randomTensor([m * ldc], seed: 3).data.array
                func run(threads: Int) -> [Float] {
                    ThreadBudget.threads = threads
                    var c = c0
                    XCTAssertEqual(BLAS.splitParts(m: m, n: n, k: k) > 1, threads > 1, "(\(m), \(n), \(k)) at \(threads) threads")
                    c.withUnsafeMutableBufferPointer { pc in
                        BLAS.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.5,
                                   a: a, lda: lda, b: b, ldb: ldb, beta: 0.25, c: pc.baseAddress!, ldc: ldc)
                    }
                    return c
                }
                let whole = run(threads: 1), split = run(threads: 3)
                var worst: Float = 0
                for i in 0..<m { for j in 0..<n { worst = max(worst, abs(whole[i * ldc + j] - split[i * ldc + j])) } }
                XCTAssertLessThan(worst, 1e-4, "(\(m), \(n), \(k)) transA \(transA) transB \(transB)")
                // The padding between rows is not C's: it must be untouched.
                for i in 0..<m { for j in n..<ldc { XCTAssertEqual(split[i * ldc + j], c0[i * ldc + j]) } }
            }
        }
    }

    func testSerialThreadsNeverSplit() {
        let saved = ThreadBudget.threads
        defer { ThreadBudget.threads = saved }
        ThreadBudget.threads = 4
        XCTAssertEqual(BLAS.splitParts(m: 4096, n: 512, k: 512), 4)
        ThreadBudget.serially {
            XCTAssertEqual(ThreadBudget.available, 1)
            XCTAssertEqual(BLAS.splitParts(m: 4096, n: 512, k: 512), 1)
        }
        XCTAssertEqual(ThreadBudget.available, 4)
    }
}
