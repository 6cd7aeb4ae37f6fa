import Foundation
import StylizeModels
#if os(Linux)
import CSystem
#endif

/// What the service needs from an encoder: prompts (with an optional frame each) in,
/// one conditioning tensor [T, D] per prompt out, in one batched call.
/// Sendable: the service calls `encode` on its side thread and reads `seesImages` from others.
public protocol ConditioningBackend: AnyObject, Sendable {
    /// Whether the encoder looks at frames (vision-aware refresh applies).
    var seesImages: Bool { get }
    /// Whether a failed encode is tried again later, with growing pauses, until it works
    /// (a remote encoder's server may come back); a local encoder's failures are final.
    var retriesAfterFailure: Bool { get }
    func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor]
}

extension ConditioningBackend {
    public var retriesAfterFailure: Bool { false }
}

/// A ready conditioning tensor and what produced it.
public struct Conditioning: Sendable {
    public let prompt: String
    /// [T, D] for one sample; the stylizer repeats it over the batch.
    public let tensor: Tensor
    /// Frame counter of the frame the encoder saw (nil for text-only encoders).
    public let frameIndex: Int?
    /// Seconds the encoder took for the call that produced this.
    public let seconds: Double
}

/// The side path: encodes prompts (and, for vision-aware encoders, the newest frame
/// every `refreshInterval` frames) on its own thread, caches results by (prompt, model)
/// with an LRU bound, and batches every pending request into one forward pass. The main
/// path reads the newest ready conditioning and never waits, except for the very first.
///
/// Ordering: the active prompt is always the last one given to `setPrompt`, whatever
/// order encodes finish in (a result only becomes current while its prompt is still the
/// active one), and callbacks are delivered in the order the activations happened, all
/// from the side thread, so the last `onActivated` names the prompt in use.
// Safe: every var below is guarded by `condition` (an NSCondition: the side thread waits on it).
public final class ConditioningService: @unchecked Sendable {
    public struct Key: Hashable { public let prompt: String; public let model: String }

    /// Prompts longer than this many UTF-8 bytes are cut (at a character boundary) before
    /// they are stored or encoded: the tokenizer keeps only its first few hundred tokens
    /// anyway, and encoding a multi-megabyte string in full takes seconds of CPU.
    public static let maxPromptBytes = 4096

    /// `prompt` cut to at most `maxPromptBytes` UTF-8 bytes without splitting a character.
    public static func truncated(_ prompt: String) -> String {
        guard prompt.utf8.count > maxPromptBytes else { return prompt }
        var bytes = 0
        var end = prompt.startIndex
        for character in prompt {
            bytes += character.utf8.count
            if bytes > maxPromptBytes { break }
            end = prompt.index(after: end)
        }
        return String(prompt[..<end])
    }

    private enum Event {
        case activated(String, Double)
        case failed(Error)
    }

    private let backend: ConditioningBackend
    private let modelID: String
    private let condition = NSCondition()

    // Guarded by `condition`.
    private var running = false
    /// Bumped by every start(): a loop whose generation is no longer current ends, so a
    /// restart after a stop() from inside a callback never leaves two loops running.
    private var generation = 0
    private var loopExited: DispatchSemaphore?
    private var sideThread: pthread_t?
    private var activePrompt: String
    private var pending: [String: RGBImage?] = [:]     // prompt → frame to encode with
    private var pendingOrder: [String] = []
    private var cache: [Key: Conditioning] = [:]
    private var lru: [Key] = []
    private var latest: Conditioning?                  // newest ready for activePrompt
    private var newestFrame: (RGBImage, Int)?
    private var lastRefreshFrame = Int.min
    private var failure: Error?
    /// A failed request the backend wants retried, and when (`retriesAfterFailure`).
    private var retry: (prompts: [String], frames: [RGBImage?], at: Date)?
    private var retryDelay = ConditioningService.firstRetryDelay
    private var activationPending = true
    private var events: [Event] = []
    private var requestTimes: [String: Double] = [:]
    private var _onActivated: (@Sendable (String, Double) -> Void)?
    private var _onError: (@Sendable (Error) -> Void)?

    public let cacheCapacity: Int
    /// Pauses before retrying a failed request: doubled after each failure up to the last,
    /// back to the first after a success.
    public static let firstRetryDelay: TimeInterval = 0.5
    public static let lastRetryDelay: TimeInterval = 4
    /// Frames between vision-aware re-encodes (0: never refresh).
    public var refreshInterval: Int { get { condition.withLock { _refresh } } set { condition.withLock { _refresh = max(0, newValue) } } }
    private var _refresh: Int

    /// Called on the side thread when a new prompt's conditioning first becomes active,
    /// with the prompt and the seconds from request to ready. Never called once `stop()`
    /// has returned.
    public var onActivated: (@Sendable (String, Double) -> Void)? {
        get { condition.withLock { _onActivated } }
        set { condition.withLock { _onActivated = newValue } }
    }
    /// Called on the side thread when encoding fails (the element posts an error). Never
    /// called once `stop()` has returned.
    public var onError: (@Sendable (Error) -> Void)? {
        get { condition.withLock { _onError } }
        set { condition.withLock { _onError = newValue } }
    }

    public init(backend: ConditioningBackend, modelID: String, prompt: String,
                refreshInterval: Int = 0, cacheCapacity: Int = 32) {
        self.backend = backend
        self.modelID = modelID
        self.activePrompt = Self.truncated(prompt)
        self._refresh = refreshInterval
        self.cacheCapacity = max(1, cacheCapacity)
    }

    public func start() {
        let started = condition.withLock { () -> (Int, DispatchSemaphore)? in
            guard !running else { return nil }
            running = true
            failure = nil
            generation += 1
            let exited = DispatchSemaphore(value: 0)
            loopExited = exited
            if !backend.seesImages { enqueue(activePrompt, frame: nil) }
            return (generation, exited)
        }
        guard case let (loopGeneration, exited)? = started else { return }
        let t = Thread { [self] in
            loop(generation: loopGeneration)
            exited.signal()
        }
        t.name = "stylize-conditioning"
        t.qualityOfService = .userInitiated
        t.start()
    }

    /// Stops the side thread and waits until it has ended, so no callback arrives after
    /// this returns. Called from a callback (on the side thread itself) it cannot wait for
    /// its own caller; the loop then ends as soon as that callback returns.
    public func stop() {
        let exited = condition.withLock { () -> DispatchSemaphore? in
            running = false
            condition.broadcast()
            defer { loopExited = nil }
            if let sideThread, pthread_equal(sideThread, pthread_self()) != 0 { return nil }
            return loopExited
        }
        exited?.wait()
    }

    /// Sets the prompt (normal use while playing): stores it and wakes the side thread;
    /// returns at once. A cached prompt becomes active immediately (its activation is
    /// still reported from the side thread, in order with the others).
    public func setPrompt(_ prompt: String) {
        let prompt = Self.truncated(prompt)
        condition.withLock {
            guard prompt != activePrompt else { return }
            activePrompt = prompt
            activationPending = true
            requestTimes[prompt] = StreamStatistics.now()
            let key = Key(prompt: prompt, model: modelID)
            if let hit = cache[key], !backend.seesImages || hit.frameIndex != nil {
                touch(key)
                latest = hit
                activationPending = false
                requestTimes[prompt] = nil
                events.append(.activated(prompt, 0))
                condition.broadcast()
            } else {
                enqueue(prompt, frame: backend.seesImages ? newestFrame?.0 : nil)
            }
        }
    }

    public var prompt: String { condition.withLock { activePrompt } }

    /// The main path offers each frame it converts (only used by vision-aware encoders):
    /// the newest is kept, and every `refreshInterval` frames a re-encode is queued.
    public func offerFrame(_ frame: @autoclosure () -> RGBImage, index: Int) {
        guard backend.seesImages else { return }
        condition.withLock {
            let needFirst = latest == nil && pending.isEmpty && failure == nil
            let due = _refresh > 0 && index - lastRefreshFrame >= _refresh
            guard needFirst || due else { return }
            let f = frame()
            newestFrame = (f, index)
            if needFirst || due {
                lastRefreshFrame = index
                enqueue(activePrompt, frame: f)
            }
        }
    }

    /// The newest ready conditioning for the active prompt, or the previous prompt's while
    /// the new one is encoding. nil only before the very first is ready.
    public func current() -> Conditioning? { condition.withLock { latest } }

    /// Blocks until the first conditioning exists (the only wait on the main path).
    public func waitForFirst(timeout: TimeInterval = .infinity) throws -> Conditioning? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: min(timeout, 1e9))
        while latest == nil && failure == nil && running {
            if !condition.wait(until: deadline) { break }
        }
        if let failure { throw failure }
        return latest
    }

    // MARK: - side thread

    private func enqueue(_ prompt: String, frame: RGBImage?) {
        if pending[prompt] == nil { pendingOrder.append(prompt) }
        pending[prompt] = frame
        if requestTimes[prompt] == nil { requestTimes[prompt] = StreamStatistics.now() }
        condition.broadcast()
    }

    private func loop(generation: Int) {
        condition.withLock { sideThread = pthread_self() }
        lowerThreadPriority()
        ThreadBudget.serially { serve(generation: generation) }
        condition.withLock { if self.generation == generation { sideThread = nil } }
    }

    /// Delivers events and encodes until stopped. Events go first: a cache hit's
    /// activation is not held back behind a multi-second encode.
    private func serve(generation: Int) {
        while true {
            condition.lock()
            while running && self.generation == generation && pending.isEmpty && events.isEmpty {
                guard let r = retry else {
                    condition.wait()
                    continue
                }
                if Date() < r.at {
                    _ = condition.wait(until: r.at)
                    continue
                }
                // Only the prompt still in use is worth another request.
                retry = nil
                for (prompt, frame) in zip(r.prompts, r.frames) where prompt == activePrompt && latest?.prompt != prompt {
                    enqueue(prompt, frame: frame)
                }
            }
            guard running && self.generation == generation else { condition.unlock(); return }
            if !events.isEmpty {
                let event = events.removeFirst()
                let (activated, failed) = (_onActivated, _onError)
                condition.unlock()
                // stop() waits for this loop to end, so a callback running here finishes
                // before stop() returns, and none starts after running was cleared above.
                switch event {
                case let .activated(prompt, seconds): activated?(prompt, seconds)
                case let .failed(error): failed?(error)
                }
                continue
            }
            let prompts = pendingOrder
            let frames = prompts.map { pending[$0] ?? nil }
            pending.removeAll()
            pendingOrder.removeAll()
            let frameIndex = newestFrame?.1
            condition.unlock()

            let t0 = StreamStatistics.now()
            let result = Result { try backend.encode(prompts: prompts, frames: frames) }
            let seconds = StreamStatistics.now() - t0

            condition.lock()
            switch result {
            case .success(let tensors):
                failure = nil
                retryDelay = Self.firstRetryDelay
                for (i, prompt) in prompts.enumerated() {
                    let c = Conditioning(prompt: prompt, tensor: tensors[i],
                                         frameIndex: frames[i] == nil ? nil : frameIndex, seconds: seconds)
                    let key = Key(prompt: prompt, model: modelID)
                    cache[key] = c
                    touch(key)
                    // An older prompt finishing after a newer one was set is only cached.
                    if prompt == activePrompt {
                        latest = c
                        if activationPending {
                            activationPending = false
                            events.append(.activated(prompt, StreamStatistics.now() - (requestTimes[prompt] ?? t0)))
                        }
                        requestTimes[prompt] = nil
                    }
                }
            case .failure(let error):
                failure = error
                events.append(.failed(error))
                if backend.retriesAfterFailure {
                    retry = (prompts, frames, Date(timeIntervalSinceNow: retryDelay))
                    retryDelay = min(Self.lastRetryDelay, 2 * retryDelay)
                }
            }
            condition.broadcast()
            condition.unlock()
        }
    }

    private func touch(_ key: Key) {
        lru.removeAll { $0 == key }
        lru.append(key)
        while lru.count > cacheCapacity { cache[lru.removeFirst()] = nil }
    }

    /// Cached keys, least recently used first (for tests and stats).
    public var cachedPrompts: [String] { condition.withLock { lru.map(\.prompt) } }
}

/// The side path yields the cores to the main path: measured here, two threads calling
/// OpenBLAS concurrently each get about half the machine, so without this a 2-second
/// encoder call would halve the frame rate for 2 seconds. At nice +10, and serial (its
/// GEMMs and kernels stay on this thread, see `ThreadBudget.serially`), it takes the
/// time the main path leaves idle.
private func lowerThreadPriority() {
    #if os(Linux)
    _ = stylize_set_thread_nice(10)
    #endif
}
