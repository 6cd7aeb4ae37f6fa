import Foundation

/// Rolling statistics the element reports once a second (`stylize-stats`).
public final class StreamStatistics: @unchecked Sendable {
    public struct Snapshot: Sendable, Equatable {
        public var fps: Double
        public var latencyP50: Double
        public var latencyP95: Double
        public var encoderSeconds: Double
        public var framesOut: Int
        public var skippedFrames: Int
    }

    private let lock = NSLock()
    private var outputTimes: [Double] = []   // completion times within the window
    private var latencies: [Double] = []     // last N frame latencies (s)
    private var encoderTime: Double = 0
    private var framesOut = 0
    private var skipped = 0
    private let window: Double
    private let latencySamples: Int

    public init(window: Double = 2, latencySamples: Int = 512) {
        self.window = window
        self.latencySamples = latencySamples
    }

    /// A frame left the engine `latency` seconds after it entered; `now` in seconds.
    public func frameOut(latency: Double, skipped wasSkipped: Bool = false, now: Double = StreamStatistics.now()) {
        lock.withLock {
            outputTimes.append(now)
            outputTimes.removeAll { $0 < now - window }
            latencies.append(latency)
            if latencies.count > latencySamples { latencies.removeFirst(latencies.count - latencySamples) }
            framesOut += 1
            if wasSkipped { skipped += 1 }
        }
    }

    public func encoderRan(seconds: Double) { lock.withLock { encoderTime = seconds } }

    public func snapshot(now: Double = StreamStatistics.now()) -> Snapshot {
        lock.withLock {
            let recent = outputTimes.filter { $0 >= now - window }
            let span = min(window, max(1e-9, now - (recent.first ?? now)))
            let fps = recent.count > 1 ? Double(recent.count - 1) / max(span, 1e-9) : 0
            let sorted = latencies.sorted()
            func percentile(_ p: Double) -> Double {
                sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((p * Double(sorted.count - 1)).rounded()))]
            }
            return Snapshot(fps: fps, latencyP50: percentile(0.5), latencyP95: percentile(0.95),
                            encoderSeconds: encoderTime, framesOut: framesOut, skippedFrames: skipped)
        }
    }

    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}
