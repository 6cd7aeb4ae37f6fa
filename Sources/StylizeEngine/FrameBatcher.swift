import Foundation

/// The bounded queue between the streaming thread and the worker.
///
/// Frames accumulate into batches of `batchSize`; serialized events (EOS, SEGMENT, GAP,
/// CAPS…) travel in the same queue so they leave in order with the frames queued before
/// them. A partial batch is released when an event follows it (EOS drains, never drops),
/// or when its oldest frame has waited `maxBatchWait` (live sources). `push` blocks while
/// the queue is full: back-pressure instead of unbounded memory.
///
/// A frame's batch and its position in it (its slot) are fixed when it is pushed, so the
/// producer can write each frame straight into its slot of a batch-sized buffer: a batch
/// closes when its last slot is filled, when an event is pushed behind it, when the
/// worker takes it early (max-batch-wait) or when `batchSize` changes.
// Safe: all state is guarded by `condition`; a frame or event pushed is handed over whole to next()'s caller.
public final class FrameBatcher<Frame, Event>: @unchecked Sendable {
    public enum Item {
        case frames([Frame])
        case event(Event)
    }

    /// Where a pushed frame goes: its position in its batch, and the batch's capacity.
    public struct Slot: Sendable, Equatable {
        public let index: Int
        public let batchSize: Int
    }

    private enum Entry {
        case frame(Frame, enqueued: UInt64, batch: Int)
        case event(Event)
    }

    private let condition = NSCondition()
    private var queue: [Entry] = []
    /// Frames in `queue` (kept, not counted: the count ran on every push).
    private var queuedFrames = 0
    private var flushing = false
    private var stopped = false
    private var _batchSize: Int
    private var _maxBatchWait: TimeInterval?
    /// The batch that pushed frames join, and how many it holds so far.
    private var openBatch = 0
    private var openFill = 0
    /// Frames the queue may hold before `push` blocks (at least one full batch).
    private var capacity: Int { max(2 * _batchSize, 2) }

    public init(batchSize: Int, maxBatchWait: TimeInterval? = nil) {
        _batchSize = max(1, batchSize)
        _maxBatchWait = maxBatchWait
    }

    public var batchSize: Int {
        get { condition.withLock { _batchSize } }
        set {
            condition.withLock {
                let n = max(1, newValue)
                if n != _batchSize { closeOpenBatch() }
                _batchSize = n
                condition.broadcast()
            }
        }
    }

    /// nil: wait for a full batch (or an event) however long it takes.
    public var maxBatchWait: TimeInterval? {
        get { condition.withLock { _maxBatchWait } }
        set { condition.withLock { _maxBatchWait = newValue; condition.broadcast() } }
    }

    public var count: Int { condition.withLock { queue.count } }

    /// Enqueues a frame, blocking while the queue is full. Returns false (frame not
    /// queued) when the batcher is flushing or stopped.
    @discardableResult
    public func push(_ frame: Frame) -> Bool {
        (try? push(making: { _ in frame })) ?? false
    }

    /// Enqueues the frame `make` builds for its slot, blocking while the queue is full.
    /// `make` runs under the queue's lock (the worker cannot take the batch half-written);
    /// if it throws, nothing is queued and the error propagates. Returns false (`make` not
    /// called) when the batcher is flushing or stopped.
    public func push(making make: (Slot) throws -> Frame) throws -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while !flushing && !stopped && frameCount() >= capacity { condition.wait() }
        if flushing || stopped { return false }
        let frame = try make(Slot(index: openFill, batchSize: _batchSize))
        queue.append(.frame(frame, enqueued: DispatchTime.now().uptimeNanoseconds, batch: openBatch))
        queuedFrames += 1
        openFill += 1
        if openFill >= _batchSize { closeOpenBatch() }
        condition.broadcast()
        return true
    }

    /// Enqueues a serialized event behind the frames already queued. Never blocks on a
    /// full queue (events are few and must not deadlock against a stalled worker).
    @discardableResult
    public func push(event: Event) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if flushing || stopped { return false }
        closeOpenBatch()
        queue.append(.event(event))
        condition.broadcast()
        return true
    }

    /// The worker's call: blocks until a full batch, a partial batch that must go (an
    /// event behind it, or its oldest frame waited maxBatchWait), or an event is ready.
    /// Returns nil when flushing or stopped.
    public func next() -> Item? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if flushing || stopped { return nil }
            if case .event(let e)? = queue.first {
                queue.removeFirst()
                condition.broadcast()
                return .event(e)
            }
            guard case .frame(_, let t0, let batch)? = queue.first else { condition.wait(); continue }
            if batch != openBatch { return .frames(takeFrames(of: batch)) }
            if let wait = _maxBatchWait {
                let waited = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if waited >= wait {
                    closeOpenBatch()
                    return .frames(takeFrames(of: batch))
                }
                _ = condition.wait(until: Date(timeIntervalSinceNow: wait - waited))
                continue
            }
            condition.wait()
        }
    }

    /// FLUSH_START: drop everything held and release every blocked caller at once.
    public func startFlushing() {
        condition.withLock {
            flushing = true
            queue.removeAll()
            queuedFrames = 0
            closeOpenBatch()
            condition.broadcast()
        }
    }

    /// FLUSH_STOP: accept frames again.
    public func stopFlushing() {
        condition.withLock {
            flushing = false
            queue.removeAll()
            queuedFrames = 0
            closeOpenBatch()
            condition.broadcast()
        }
    }

    /// Shutdown: like flushing, and permanent until `restart`.
    public func stop() {
        condition.withLock {
            stopped = true
            queue.removeAll()
            queuedFrames = 0
            closeOpenBatch()
            condition.broadcast()
        }
    }

    public func restart() {
        condition.withLock {
            stopped = false
            flushing = false
            queue.removeAll()
            queuedFrames = 0
            closeOpenBatch()
            condition.broadcast()
        }
    }

    // MARK: - under the lock

    private func frameCount() -> Int { queuedFrames }

    /// Frames pushed from now on start a new batch.
    private func closeOpenBatch() {
        guard openFill > 0 else { return }
        openBatch &+= 1
        openFill = 0
    }

    /// The frames of `batch`, which lead the queue.
    private func takeFrames(of batch: Int) -> [Frame] {
        var out: [Frame] = []
        for e in queue {
            guard case .frame(let f, _, let b) = e, b == batch else { break }
            out.append(f)
        }
        queue.removeFirst(out.count)
        queuedFrames -= out.count
        condition.broadcast()
        return out
    }
}
