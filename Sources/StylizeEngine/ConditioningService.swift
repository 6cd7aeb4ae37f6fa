import Foundation
import StylizeModels
#if os(Linux)
import CSystem
#endif

/// What the service needs from an encoder: prompts (with an optional frame each) in,
/// one conditioning tensor [T, D] per prompt out, in one batched call.
public protocol ConditioningBackend: AnyObject {
    /// Whether the encoder looks at frames (vision-aware refresh applies).
    var seesImages: Bool { get }
    func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor]
}

/// A ready conditioning tensor and what produced it.
public struct Conditioning: @unchecked Sendable {
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
public final class ConditioningService: @unchecked Sendable {
    public struct Key: Hashable { public let prompt: String; public let model: String }

    private let backend: ConditioningBackend
    private let modelID: String
    private let condition = NSCondition()
    private var thread: Thread?
    private var running = false

    // Guarded by `condition`.
    private var activePrompt: String
    private var pending: [String: RGBImage?] = [:]     // prompt → frame to encode with
    private var pendingOrder: [String] = []
    private var cache: [Key: Conditioning] = [:]
    private var lru: [Key] = []
    private var latest: Conditioning?                  // newest ready for activePrompt
    private var newestFrame: (RGBImage, Int)?
    private var lastRefreshFrame = Int.min
    private var failure: Error?
    private var activationPending = true

    public let cacheCapacity: Int
    /// Frames between vision-aware re-encodes (0: never refresh).
    public var refreshInterval: Int { get { condition.withLock { _refresh } } set { condition.withLock { _refresh = max(0, newValue) } } }
    private var _refresh: Int

    /// Called on the side thread when a new prompt's conditioning first becomes active,
    /// with the prompt and the seconds from request to ready.
    public var onActivated: ((String, Double) -> Void)?
    /// Called on the side thread when encoding fails (the element posts an error).
    public var onError: ((Error) -> Void)?
    private var requestTimes: [String: Double] = [:]

    public init(backend: ConditioningBackend, modelID: String, prompt: String,
                refreshInterval: Int = 0, cacheCapacity: Int = 32) {
        self.backend = backend
        self.modelID = modelID
        self.activePrompt = prompt
        self._refresh = refreshInterval
        self.cacheCapacity = max(1, cacheCapacity)
    }

    public func start() {
        condition.withLock {
            guard !running else { return }
            running = true
            failure = nil
            if !backend.seesImages { enqueue(activePrompt, frame: nil) }
        }
        let t = Thread { [weak self] in self?.loop() }
        t.name = "stylize-conditioning"
        t.qualityOfService = .userInitiated
        thread = t
        t.start()
    }

    public func stop() {
        condition.withLock {
            running = false
            condition.broadcast()
        }
        thread = nil
    }

    /// Sets the prompt (normal use while playing): stores it and wakes the side thread;
    /// returns at once. A cached prompt becomes active immediately.
    public func setPrompt(_ prompt: String) {
        condition.lock()
        guard prompt != activePrompt else { return condition.unlock() }
        activePrompt = prompt
        activationPending = true
        requestTimes[prompt] = StreamStatistics.now()
        let key = Key(prompt: prompt, model: modelID)
        var activatedFromCache = false
        if let hit = cache[key], !backend.seesImages || hit.frameIndex != nil {
            touch(key)
            latest = hit
            activationPending = false
            requestTimes[prompt] = nil
            activatedFromCache = true
        } else {
            enqueue(prompt, frame: backend.seesImages ? newestFrame?.0 : nil)
        }
        let callback = onActivated
        condition.unlock()
        if activatedFromCache { callback?(prompt, 0) }
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

    private func loop() {
        lowerThreadPriority()
        ThreadBudget.serially { encodeUntilStopped() }
    }

    private func encodeUntilStopped() {
        while true {
            condition.lock()
            while running && pending.isEmpty { condition.wait() }
            if !running { condition.unlock(); return }
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
            var activated: (String, Double)? = nil
            switch result {
            case .success(let tensors):
                for (i, prompt) in prompts.enumerated() {
                    let c = Conditioning(prompt: prompt, tensor: tensors[i],
                                         frameIndex: frames[i] == nil ? nil : frameIndex, seconds: seconds)
                    let key = Key(prompt: prompt, model: modelID)
                    cache[key] = c
                    touch(key)
                    if prompt == activePrompt {
                        latest = c
                        if activationPending {
                            activationPending = false
                            activated = (prompt, StreamStatistics.now() - (requestTimes[prompt] ?? t0))
                        }
                        requestTimes[prompt] = nil
                    }
                }
            case .failure(let error):
                failure = error
            }
            condition.broadcast()
            let (cb, errCb, err) = (onActivated, onError, failure)
            condition.unlock()
            if let (p, s) = activated { cb?(p, s) }
            if case .failure = result, let err { errCb?(err) }
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
