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
    /// The batch of the frame being made outside the lock (its slot is taken): the
    /// worker does not take that batch until the frame is in.
    private var making: Int?
    /// Bumped by flush, stop and restart: a frame made across one is dropped.
    private var epoch = 0
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
    /// The slot is taken under the lock and `make` runs outside it (a frame's conversion
    /// never holds up the worker); the worker waits for the frame only when it wants the
    /// very batch the frame belongs to. One producer at a time (the streaming thread). If
    /// `make` throws, nothing is queued (its slot stays empty) and the error propagates.
    /// Returns false when the batcher is flushing or stopped (before or while `make` ran).
    public func push(making make: (Slot) throws -> Frame) throws -> Bool {
        condition.lock()
        while !flushing && !stopped && frameCount() >= capacity { condition.wait() }
        if flushing || stopped {
            condition.unlock()
            return false
        }
        let slot = Slot(index: openFill, batchSize: _batchSize)
        let (batch, started, enqueued) = (openBatch, epoch, DispatchTime.now().uptimeNanoseconds)
        making = batch
        openFill += 1
        if openFill >= _batchSize { closeOpenBatch() }
        condition.unlock()

        let made = Result { try make(slot) }
        condition.lock()
        defer {
            making = nil
            condition.broadcast()
            condition.unlock()
        }
        let frame = try made.get()
        guard epoch == started, !flushing, !stopped else { return false }
        queue.append(.frame(frame, enqueued: enqueued, batch: batch))
        queuedFrames += 1
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
            if batch != openBatch {
                if making == batch { condition.wait(); continue }   // its last frame is being made
                return .frames(takeFrames(of: batch))
            }
            if let wait = _maxBatchWait {
                let waited = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if waited >= wait {
                    closeOpenBatch()
                    continue   // now closed: taken above once no frame of it is being made
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
            dropEverything()
        }
    }

    /// FLUSH_STOP: accept frames again.
    public func stopFlushing() {
        condition.withLock {
            flushing = false
            dropEverything()
        }
    }

    /// Shutdown: like flushing, and permanent until `restart`.
    public func stop() {
        condition.withLock {
            stopped = true
            dropEverything()
        }
    }

    public func restart() {
        condition.withLock {
            stopped = false
            flushing = false
            dropEverything()
        }
    }

    // MARK: - under the lock

    /// Drops every queued frame and the open batch and wakes every waiter (the frames of
    /// the old epoch are never handed out).
    private func dropEverything() {
        queue.removeAll()
        queuedFrames = 0
        epoch &+= 1
        closeOpenBatch()
        condition.broadcast()
    }

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
