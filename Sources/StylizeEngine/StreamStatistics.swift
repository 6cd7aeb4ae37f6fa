import Foundation
import Synchronization

/// Rolling statistics the element reports once a second (`stylize-stats`).
///
/// Two different times: a frame's latency (from entering the element to being pushed:
/// the wait for its batch to fill, the queue, the batch's compute, the write-back), which
/// the element records, and a batch's compute time, which the engine records. Apps that
/// drive the engine alone see only the second.
public final class StreamStatistics: Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var fps: Double
        /// Frame latency percentiles (seconds, chain entry to push); 0 before any.
        public var latencyP50: Double
        public var latencyP95: Double
        /// Batch compute-time percentiles (seconds); 0 before any.
        public var batchSecondsP50: Double
        public var batchSecondsP95: Double
        public var encoderSeconds: Double
        public var framesOut: Int
        public var skippedFrames: Int
    }

    private struct State {
        var outputTimes: [Double] = []   // completion times within the window
        var latencies: RingSamples
        var batchTimes: RingSamples
        var encoderTime: Double = 0
        var framesOut = 0
        var skipped = 0
    }
    private let state: Locked<State>
    private let window: Double

    public init(window: Double = 2, latencySamples: Int = 512) {
        self.window = window
        state = Locked(State(latencies: RingSamples(capacity: latencySamples),
                            batchTimes: RingSamples(capacity: max(1, latencySamples / 8))))
    }

    /// A batch of `frames` took `seconds` to compute (`skipped` of them reused an earlier output).
    public func batchRan(seconds: Double, frames: Int, skipped wasSkipped: Int = 0, now: Double = StreamStatistics.now()) {
        let window = window
        state.withLock { s in
            for _ in 0..<frames { s.outputTimes.append(now) }
            s.outputTimes.removeAll { $0 < now - window }
            s.batchTimes.append(seconds)
            s.framesOut += frames
            s.skipped += wasSkipped
        }
    }

    /// A frame left the element `seconds` after it entered.
    public func frameLatency(_ seconds: Double) {
        state.withLock { $0.latencies.append(seconds) }
    }

    public func encoderRan(seconds: Double) { state.withLock { $0.encoderTime = seconds } }

    public func snapshot(now: Double = StreamStatistics.now()) -> Snapshot {
        let window = window
        return state.withLock { s in
            let recent = s.outputTimes.filter { $0 >= now - window }
            let span = min(window, max(1e-9, now - (recent.first ?? now)))
            let fps = recent.count > 1 ? Double(recent.count - 1) / max(span, 1e-9) : 0
            return Snapshot(fps: fps, latencyP50: s.latencies.percentile(0.5), latencyP95: s.latencies.percentile(0.95),
                            batchSecondsP50: s.batchTimes.percentile(0.5), batchSecondsP95: s.batchTimes.percentile(0.95),
                            encoderSeconds: s.encoderTime, framesOut: s.framesOut, skippedFrames: s.skipped)
        }
    }

    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// The last `capacity` samples, kept in a fixed array (no allocation once full).
struct RingSamples {
    private var samples: [Double] = []
    private var next = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        samples.reserveCapacity(self.capacity)
    }

    mutating func append(_ v: Double) {
        if samples.count < capacity {
            samples.append(v)
        } else {
            samples[next] = v
            next = (next + 1) % capacity
        }
    }

    func percentile(_ p: Double) -> Double {
        guard !samples.isEmpty else { return 0 }
        let sorted = samples.sorted()
        return sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
    }
}
