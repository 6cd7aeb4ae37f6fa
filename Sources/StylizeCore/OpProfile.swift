import Foundation
import Synchronization

/// Wall time per kind of operation, for `stylize-tool bench --profile`: the answer to
/// "where does the time go". Sections nest (attention calls sgemm, a conv adds its
/// bias): each section's time is exclusive of the sections opened inside it, so the
/// kinds add up to the profiled total. Off unless a benchmark turns it on; only the
/// thread that runs `measure` (the one that drives the model) records sections.
public enum OpProfile {
    public enum Kind: String, CaseIterable, Sendable {
        case convGemm = "conv im2col+sgemm"
        case convPointwise = "conv 1x1 (sgemm)"
        case convWinograd = "conv 3x3 Winograd transforms"
        case winogradGemm = "conv 3x3 Winograd GEMMs"
        case winogradPasses = "conv 3x3 Winograd per-thread passes"
        case convDirect = "conv direct (narrow)"
        case linear = "linear (sgemm)"
        case attention = "attention (QK, softmax, V)"
        case normalization = "normalization"
    }

    /// On while a `measure` runs. Sections are recorded on the thread that called `measure`;
    /// other threads (pool threads, other streams) pass through unrecorded.
    public static var enabled: Bool {
        get { profiling.load(ordering: .relaxed) }
        set { profiling.store(newValue, ordering: .relaxed) }
    }
    private static let profiling = Atomic<Bool>(false)

    /// One `measure`'s times, reached only from the thread that runs it (through `recordingKey`).
    private final class Recording {
        var seconds = [Double](repeating: 0, count: Kind.allCases.count)
        var stack: [(kind: Int, start: UInt64, children: UInt64)] = []
    }

    private static let recordingKey: pthread_key_t = {
        var key = pthread_key_t()
        // Not inside precondition(): -Ounchecked builds drop its condition, call included.
        let status = pthread_key_create(&key, nil)
        if status != 0 { fatalError("OpProfile: pthread_key_create failed (\(status))") }
        return key
    }()

    @inline(__always)
    public static func section<T>(_ kind: Kind, _ body: () throws -> T) rethrows -> T {
        if !enabled { return try body() }
        guard let own = pthread_getspecific(recordingKey) else { return try body() }
        let recording = Unmanaged<Recording>.fromOpaque(own).takeUnretainedValue()
        let index = Kind.allCases.firstIndex(of: kind)!
        recording.stack.append((index, DispatchTime.now().uptimeNanoseconds, 0))
        defer {
            let top = recording.stack.removeLast()
            let elapsed = DispatchTime.now().uptimeNanoseconds - top.start
            recording.seconds[top.kind] += Double(elapsed - min(elapsed, top.children)) / 1e9
            if !recording.stack.isEmpty { recording.stack[recording.stack.count - 1].children += elapsed }
        }
        return try body()
    }

    /// Runs `body` with profiling on; returns seconds per kind (kinds never entered
    /// are left out) and the total.
    public static func measure(_ body: () throws -> Void) rethrows -> (kinds: [(Kind, Double)], total: Double) {
        let recording = Recording()
        let was = pthread_getspecific(recordingKey)
        pthread_setspecific(recordingKey, Unmanaged.passUnretained(recording).toOpaque())
        enabled = true
        defer {
            enabled = false
            pthread_setspecific(recordingKey, was)
            withExtendedLifetime(recording) {}
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        let total = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let seconds = recording.seconds
        let kinds = Kind.allCases.enumerated().compactMap { i, k in seconds[i] > 0 ? (k, seconds[i]) : nil }
        return (kinds, total)
    }
}
