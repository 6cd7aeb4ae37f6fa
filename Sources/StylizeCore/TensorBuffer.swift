import Foundation

/// Float storage of a `Tensor` and of kernels' scratch space: a copy-on-write collection
/// like `[Float]`, whose memory comes from `TensorBufferPool` and goes back to it when the
/// last copy dies.
///
/// The engine runs the same graph at the same resolution frame after frame, so every
/// buffer size it asks for on the hot path was asked for on the previous batch: after
/// warm-up each request is served from the pool, and no activation or scratch memory is
/// allocated per frame (`TensorBufferPool.statistics` shows it; HotPathTests checks it).
// Sendable like Array: copy-on-write, every write goes through makeUnique() (storage shared with no one).
public struct TensorBuffer: RandomAccessCollection, MutableCollection, @unchecked Sendable {
    @usableFromInline var storage: TensorStorage

    /// Memory the caller promises to overwrite completely.
    @inlinable public init(uninitializedCount count: Int) {
        storage = TensorStorage(count: count)
    }

    @inlinable public init(repeating value: Float, count: Int) {
        storage = TensorStorage(count: count)
        storage.base.update(repeating: value, count: count)
    }

    @inlinable public init<C: Collection>(_ values: C) where C.Element == Float {
        let count = values.count
        storage = TensorStorage(count: count)
        let base = storage.base
        if values.withContiguousStorageIfAvailable({ base.update(from: $0.baseAddress!, count: count) }) == nil {
            var i = 0
            for v in values { base[i] = v; i += 1 }
        }
    }

    public typealias Index = Int
    public typealias Element = Float
    public typealias SubSequence = Slice<TensorBuffer>
    public typealias Indices = Range<Int>

    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { storage.count }
    @inlinable public var count: Int { storage.count }
    @inlinable public var indices: Range<Int> { 0..<storage.count }
    @inlinable public func index(after i: Int) -> Int { i + 1 }
    @inlinable public func index(before i: Int) -> Int { i - 1 }

    @inlinable public subscript(i: Int) -> Float {
        get {
            precondition(i >= 0 && i < storage.count, "TensorBuffer: index \(i) out of range 0..<\(storage.count)")
            return storage.base[i]
        }
        set {
            precondition(i >= 0 && i < storage.count, "TensorBuffer: index \(i) out of range 0..<\(storage.count)")
            makeUnique()
            storage.base[i] = newValue
        }
    }

    @inlinable public subscript(bounds: Range<Int>) -> Slice<TensorBuffer> {
        get {
            precondition(bounds.lowerBound >= 0 && bounds.upperBound <= storage.count, "TensorBuffer: range \(bounds) out of 0..<\(storage.count)")
            return Slice(base: self, bounds: bounds)
        }
        set {
            replaceSubrange(bounds, with: newValue)
        }
    }

    @inlinable public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    @inlinable public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        makeUnique()
        var buffer = UnsafeMutableBufferPointer(start: storage.base, count: storage.count)
        return try body(&buffer)
    }

    @inlinable public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R? {
        try body(UnsafeBufferPointer(start: storage.base, count: storage.count))
    }

    @inlinable public mutating func withContiguousMutableStorageIfAvailable<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R? {
        try withUnsafeMutableBufferPointer(body)
    }

    /// Overwrites `range` with as many values (a tensor's size never changes in place).
    @inlinable public mutating func replaceSubrange<C: Collection>(_ range: Range<Int>, with values: C) where C.Element == Float {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count && values.count == range.count,
                     "TensorBuffer.replaceSubrange: \(values.count) values for range \(range) of 0..<\(storage.count)")
        makeUnique()
        let dst = storage.base + range.lowerBound
        if values.withContiguousStorageIfAvailable({ dst.update(from: $0.baseAddress!, count: range.count) }) == nil {
            var i = 0
            for v in values { dst[i] = v; i += 1 }
        }
    }

    /// The values as an array (a copy; for file writers and tests).
    public var array: [Float] { withUnsafeBufferPointer { Array($0) } }

    @inlinable mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) {
            let copy = TensorStorage(count: storage.count)
            copy.base.update(from: storage.base, count: storage.count)
            storage = copy
        }
    }
}

extension Slice where Base == TensorBuffer {
    /// Slices of a tensor's storage are contiguous; memcpy-speed copies depend on saying so.
    @inlinable public func withContiguousStorageIfAvailable<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R? {
        try base.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[startIndex..<endIndex])) }
    }
}

extension TensorBuffer: Equatable {
    public static func == (a: TensorBuffer, b: TensorBuffer) -> Bool {
        a.count == b.count && a.elementsEqual(b)
    }
}

extension TensorBuffer: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: Float...) { self.init(elements) }
}

extension TensorBuffer: CustomStringConvertible {
    public var description: String { "TensorBuffer(\(count) floats)" }
}

/// One block of pooled memory; gives it back to the pool when the last reference goes.
@usableFromInline final class TensorStorage {
    @usableFromInline let base: UnsafeMutablePointer<Float>
    @usableFromInline let count: Int
    /// The pool lane it was taken in, and goes back to (whichever thread frees it).
    @usableFromInline let lane: Int

    @usableFromInline init(count: Int) {
        precondition(count >= 0, "TensorBuffer: negative size \(count)")
        self.count = count
        self.lane = TensorBufferPool.currentLane
        self.base = TensorBufferPool.take(count, lane: lane)
    }

    deinit { TensorBufferPool.give(base, count, lane: lane) }
}

/// Free blocks kept by exact size for reuse.
///
/// The pool, not glibc's tuning, is what keeps the hot path off malloc: a size-keyed list
/// hands the same block back in O(1) and keeps it warm in cache, and glibc keeps its
/// defaults (raising its mmap and trim thresholds process-wide, as an earlier version
/// did, made a host process such as the relay keep every freed page of its other
/// threads' arenas: +2.9 MiB per source restart). Memory is held, not returned
/// to the system, up to `limitBytes`; past that, freed blocks go back to malloc, so a
/// one-off size (a long prompt, a new resolution) cannot pin memory forever.
public enum TensorBufferPool {
    public struct Statistics: Sendable, Equatable {
        /// Requests served from the pool.
        public var reused: Int = 0
        /// Requests that had to allocate: each is a malloc of a whole buffer.
        public var allocated: Int = 0
        /// Bytes those allocations asked for.
        public var allocatedBytes: Int = 0
        /// Bytes held free in the pool now.
        public var pooledBytes: Int = 0

        public init(reused: Int = 0, allocated: Int = 0, allocatedBytes: Int = 0, pooledBytes: Int = 0) {
            (self.reused, self.allocated, self.allocatedBytes, self.pooledBytes) = (reused, allocated, allocatedBytes, pooledBytes)
        }

        /// The requests counted since `earlier` (pooledBytes: the change).
        public func since(_ earlier: Statistics) -> Statistics {
            Statistics(reused: reused - earlier.reused, allocated: allocated - earlier.allocated,
                       allocatedBytes: allocatedBytes - earlier.allocatedBytes, pooledBytes: pooledBytes - earlier.pooledBytes)
        }

        public static func + (a: Statistics, b: Statistics) -> Statistics {
            Statistics(reused: a.reused + b.reused, allocated: a.allocated + b.allocated,
                       allocatedBytes: a.allocatedBytes + b.allocatedBytes, pooledBytes: a.pooledBytes + b.pooledBytes)
        }
    }

    /// Bytes the pool may hold free. Default 4 GiB: above the working set of every model
    /// the engine runs here, below this machine's memory.
    public static var limitBytes: Int {
        get { state.withLock { $0.limitBytes } }
        set { state.withLock { $0.limitBytes = newValue } }
    }

    public static var statistics: Statistics { state.withLock { $0.statistics } }

    /// Frees every pooled block (tests; a host that wants its memory back).
    public static func drain() {
        let blocks = state.withLock { s -> [UnsafeMutablePointer<Float>] in
            let all = s.free.values.flatMap { $0.blocks.map(\.base) }
            s.free.removeAll(keepingCapacity: true)
            s.statistics.pooledBytes = 0
            return all
        }
        for b in blocks { UnsafeMutableRawPointer(b).deallocate() }
    }

    /// Runs `body` with this thread's buffers taken from (and given back to) lane `lane`'s
    /// free lists. Work split into concurrent lanes (`DenoiserLanes`) gives each lane its
    /// own lists: each lane then asks for the same blocks in the same order on every call,
    /// whereas shared lists would need, at the moment both lanes peak, blocks that an
    /// earlier, differently interleaved call never held, and allocate after warm-up.
    public static func withLane<R>(_ lane: Int, _ body: () throws -> R) rethrows -> R {
        let was = pthread_getspecific(laneKey)
        pthread_setspecific(laneKey, UnsafeRawPointer(bitPattern: lane + 1))
        defer { pthread_setspecific(laneKey, was) }
        return try body()
    }

    @usableFromInline static var currentLane: Int {
        guard let own = pthread_getspecific(laneKey) else { return 0 }
        return Int(bitPattern: own) - 1
    }

    private static let laneKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        if status != 0 { fatalError("TensorBufferPool: pthread_key_create failed (\(status))") }
        return key
    }()

    struct SizeKey: Hashable {
        let lane: Int
        let count: Int
    }

    /// A class, so popping and pushing a block mutates the list in place: through the
    /// dictionary's value, every take copied the dictionary's storage (a malloc per buffer).
    final class FreeList {
        var blocks: [FreeBlock] = []
    }

    // Safe to send: a free block belongs to the pool alone (its TensorStorage is gone); taken only under `state`'s lock.
    struct FreeBlock: @unchecked Sendable {
        let base: UnsafeMutablePointer<Float>
    }

    struct State {
        var free: [SizeKey: FreeList] = [:]
        var statistics = Statistics()
        var limitBytes = 4 << 30
    }

    static let state = Locked(State())
    /// AVX2 loads and stores prefer 32-byte alignment; 64 keeps a buffer on cache lines.
    static let alignment = 64

    @usableFromInline static func take(_ count: Int, lane: Int) -> UnsafeMutablePointer<Float> {
        let reused = state.withLock { s -> FreeBlock? in
            if let p = s.free[SizeKey(lane: lane, count: count)]?.blocks.popLast() {
                s.statistics.reused += 1
                s.statistics.pooledBytes -= count * 4
                return p
            }
            s.statistics.allocated += 1
            s.statistics.allocatedBytes += count * 4
            return nil
        }
        if let reused { return reused.base }
        return UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: alignment)
            .bindMemory(to: Float.self, capacity: max(count, 1))
    }

    @usableFromInline static func give(_ p: UnsafeMutablePointer<Float>, _ count: Int, lane: Int) {
        let block = FreeBlock(base: p)
        let kept = state.withLock { s -> Bool in
            guard s.statistics.pooledBytes + count * 4 <= s.limitBytes else { return false }
            let key = SizeKey(lane: lane, count: count)
            if let list = s.free[key] {
                list.blocks.append(block)
            } else {
                let list = FreeList()
                list.blocks.append(block)
                s.free[key] = list
            }
            s.statistics.pooledBytes += count * 4
            return true
        }
        if !kept { UnsafeMutableRawPointer(p).deallocate() }
    }
}
