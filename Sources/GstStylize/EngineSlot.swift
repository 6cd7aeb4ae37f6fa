import Foundation
import StylizeEngine
import StylizeProperties

/// The element's engine, and the one a live `model` change is loading to replace it: the
/// new folder loads on a background thread while the stream runs on the old model, and
/// the worker switches at a batch boundary (`forBatch`). Thread-safe.
final class EngineSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var current: StreamEngine?
    private var pending: StreamEngine?
    /// While stopped, a load finishing replaces the current engine at once instead of
    /// waiting for a batch boundary.
    private var started = false
    /// Bumped by every load and by teardown, so a stale load never lands.
    private var generation = 0

    var engine: StreamEngine? { lock.withLock { current } }
    var engines: [StreamEngine] { lock.withLock { [current, pending].compactMap { $0 } } }

    /// NULL→READY: the engine loaded for the `model` property.
    func install(_ e: StreamEngine) {
        let old = lock.withLock { () -> [StreamEngine] in
            defer { current = e; pending = nil; generation += 1 }
            return [current, pending].compactMap { $0 }
        }
        old.forEach(Self.release)
    }

    /// A new `model` value while an engine is loaded: the generation its load belongs to,
    /// or nil in NULL (the folder then loads at NULL→READY).
    func beginLoad() -> Int? {
        lock.withLock {
            guard current != nil else { return nil }
            generation += 1
            return generation
        }
    }

    func isCurrent(_ load: Int) -> Bool { lock.withLock { load == generation } }

    /// A background load finished: a running stream gets it at its next batch, a stopped
    /// one at once. Throws when the new engine cannot start (the old one stays).
    func finishLoad(_ made: StreamEngine, generation load: Int, settings: ElementSettings) throws {
        var discard: [StreamEngine] = [made]
        defer { discard.forEach(Self.release) }
        try lock.withLock {
            guard load == generation, current != nil else { return }
            if started {
                try made.start(settings: StylizeSettings(settings, model: made.modelDefaults))
                discard = pending.map { [$0] } ?? []
                pending = made
            } else {
                discard = [current!]
                current = made
            }
        }
    }

    /// READY→PAUSED.
    func start(settings: ElementSettings) throws {
        try lock.withLock {
            guard let e = current else { throw EngineSlotError.noModel }
            try e.start(settings: StylizeSettings(settings, model: e.modelDefaults))
            started = true
        }
    }

    /// Stops every engine's threads (the stream is stopping); a model that finished
    /// loading meanwhile becomes the current one.
    func stop() {
        let engines = lock.withLock { () -> [StreamEngine] in
            started = false
            return [current, pending].compactMap { $0 }
        }
        engines.forEach { $0.stop() }
        let old = lock.withLock { () -> StreamEngine? in
            guard let p = pending else { return nil }
            defer { current = p; pending = nil }
            return current
        }
        if let old { Self.release(old) }
    }

    /// The engine for the next batch, switching to a newly loaded model here.
    func forBatch() -> StreamEngine? {
        let (e, old) = lock.withLock { () -> (StreamEngine?, StreamEngine?) in
            guard let p = pending else { return (current, nil) }
            defer { current = p; pending = nil }
            return (p, current)
        }
        if let old { Self.release(old) }
        return e
    }

    /// READY→NULL and finalize: drops every engine; loads still running are discarded.
    func clear() {
        let old = lock.withLock { () -> [StreamEngine] in
            defer { current = nil; pending = nil; started = false; generation += 1 }
            return [current, pending].compactMap { $0 }
        }
        old.forEach(Self.release)
    }

    private static func release(_ e: StreamEngine) {
        e.stop()
        e.onConditioningActivated = nil
        e.onError = nil
        e.onControlEvent = nil
    }
}

enum EngineSlotError: Error, CustomStringConvertible {
    case noModel
    var description: String { "no model is loaded" }
}
