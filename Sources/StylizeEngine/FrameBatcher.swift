import Foundation

/// The bounded queue between the streaming thread and the worker.
///
/// Frames accumulate into batches of `batchSize`; serialized events (EOS, SEGMENT, GAP,
/// CAPS…) travel in the same queue so they leave in order with the frames queued before
/// them. A partial batch is released when an event follows it (EOS drains, never drops),
/// or when its oldest frame has waited `maxBatchWait` (live sources). `push` blocks while
/// the queue is full: back-pressure instead of unbounded memory.
public final class FrameBatcher<Frame, Event>: @unchecked Sendable {
    public enum Item {
        case frames([Frame])
        case event(Event)
    }

    private enum Entry {
        case frame(Frame, enqueued: UInt64)
        case event(Event)
    }

    private let condition = NSCondition()
    private var queue: [Entry] = []
    private var flushing = false
    private var stopped = false
    private var _batchSize: Int
    private var _maxBatchWait: TimeInterval?
    /// Frames the queue may hold before `push` blocks (at least one full batch).
    private var capacity: Int { max(2 * _batchSize, 2) }

    public init(batchSize: Int, maxBatchWait: TimeInterval? = nil) {
        _batchSize = max(1, batchSize)
        _maxBatchWait = maxBatchWait
    }

    public var batchSize: Int {
        get { condition.withLock { _batchSize } }
        set { condition.withLock { _batchSize = max(1, newValue); condition.broadcast() } }
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
        condition.lock()
        defer { condition.unlock() }
        while !flushing && !stopped && frameCount() >= capacity { condition.wait() }
        if flushing || stopped { return false }
        queue.append(.frame(frame, enqueued: DispatchTime.now().uptimeNanoseconds))
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
            let leading = leadingFrames()
            if leading >= _batchSize || (leading > 0 && leading < queue.count) {
                return .frames(takeFrames(min(leading, _batchSize)))
            }
            if leading > 0, let wait = _maxBatchWait, case .frame(_, let t0)? = queue.first {
                let waited = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
                if waited >= wait { return .frames(takeFrames(leading)) }
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
            condition.broadcast()
        }
    }

    /// FLUSH_STOP: accept frames again.
    public func stopFlushing() {
        condition.withLock {
            flushing = false
            queue.removeAll()
            condition.broadcast()
        }
    }

    /// Shutdown: like flushing, and permanent until `restart`.
    public func stop() {
        condition.withLock {
            stopped = true
            queue.removeAll()
            condition.broadcast()
        }
    }

    public func restart() {
        condition.withLock {
            stopped = false
            flushing = false
            queue.removeAll()
            condition.broadcast()
        }
    }

    // MARK: - under the lock

    private func frameCount() -> Int {
        queue.reduce(0) { if case .frame = $1 { return $0 + 1 }; return $0 }
    }

    private func leadingFrames() -> Int {
        var n = 0
        for e in queue {
            guard case .frame = e else { break }
            n += 1
        }
        return n
    }

    private func takeFrames(_ n: Int) -> [Frame] {
        var out: [Frame] = []
        out.reserveCapacity(n)
        for e in queue.prefix(n) { if case .frame(let f, _) = e { out.append(f) } }
        queue.removeFirst(n)
        condition.broadcast()
        return out
    }
}
