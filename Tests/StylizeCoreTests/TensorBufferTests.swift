import XCTest
@testable import StylizeCore

final class TensorBufferTests: XCTestCase {
    func testCopiesAreIndependentAfterAWrite() {
        var a = TensorBuffer([1, 2, 3, 4] as [Float])
        let b = a
        a[1] = 20
        XCTAssertEqual(a.array, [1, 20, 3, 4])
        XCTAssertEqual(b.array, [1, 2, 3, 4], "a write through one copy changed the other")
        var c = b
        c.withUnsafeMutableBufferPointer { $0[0] = -1 }
        XCTAssertEqual(b.array, [1, 2, 3, 4])
        XCTAssertEqual(c.array, [-1, 2, 3, 4])
    }

    func testReplaceSubrangeFromASliceOfAnotherBuffer() {
        var dst = TensorBuffer(repeating: 0, count: 6)
        let src = TensorBuffer([10, 11, 12, 13, 14, 15] as [Float])
        dst.replaceSubrange(2..<5, with: src[3..<6])
        XCTAssertEqual(dst.array, [0, 0, 13, 14, 15, 0])
        XCTAssertEqual(Array(src[1..<3]), [11, 12])
        XCTAssertEqual(TensorBuffer(src[4..<6]).array, [14, 15])
    }

    func testFreedBuffersAreReusedBySize() {
        let count = 12_345  // a size no other test uses
        let before = TensorBufferPool.statistics
        do { let first = TensorBuffer(uninitializedCount: count); XCTAssertEqual(first.count, count) }
        let afterFirst = TensorBufferPool.statistics
        XCTAssertGreaterThanOrEqual(afterFirst.allocated - before.allocated, 0)
        for _ in 0..<5 { _ = TensorBuffer(repeating: 1, count: count) }
        let after = TensorBufferPool.statistics
        XCTAssertEqual(after.allocated, afterFirst.allocated, "a size seen before was allocated again")
        XCTAssertGreaterThanOrEqual(after.reused - afterFirst.reused, 5)
    }

    func testThePoolHoldsNoMoreThanItsLimit() {
        let limit = TensorBufferPool.limitBytes
        defer { TensorBufferPool.limitBytes = limit }
        TensorBufferPool.drain()
        TensorBufferPool.limitBytes = 1 << 20
        do {
            let buffers = (0..<8).map { _ in TensorBuffer(uninitializedCount: 65_536) }  // 8 × 256 KB
            XCTAssertEqual(buffers.count, 8)
        }
        XCTAssertLessThanOrEqual(TensorBufferPool.statistics.pooledBytes, 1 << 20)
        XCTAssertGreaterThan(TensorBufferPool.statistics.pooledBytes, 0)
        TensorBufferPool.drain()
        XCTAssertEqual(TensorBufferPool.statistics.pooledBytes, 0)
    }

    func testTensorsDrawTheirStorageFromThePool() {
        let shape = [1, 7, 9, 11]
        _ = Tensor(zeros: shape)
        let before = TensorBufferPool.statistics
        let t = Tensor(uninitialized: shape)
        XCTAssertEqual(t.count, 7 * 9 * 11)
        XCTAssertEqual(TensorBufferPool.statistics.allocated, before.allocated)
        XCTAssertEqual(Tensor(zeros: shape).data.allSatisfy { $0 == 0 }, true, "a reused buffer kept old values")
    }
}
