import Foundation

/// Where the source pipeline stands.
public enum SourceState: String, Codable, Sendable {
    /// First attempt, nothing received yet.
    case connecting
    /// Frames are arriving.
    case playing
    /// The source dropped (or never came up); attempts continue with backoff.
    case reconnecting
    /// The relay is shutting down.
    case stopped
}

/// The body of `GET /status`. Field names are the JSON keys (snake_case).
public struct StatusReport: Codable, Equatable, Sendable {
    public struct Source: Codable, Equatable, Sendable {
        public var state: SourceState
        /// Restarts of the source pipeline after a drop or a failed attempt.
        public var reconnects: Int
        /// Seconds since the last frame from the source (nil before the first).
        public var lastFrameAgeSeconds: Double?
        public var lastError: String?
        public var description: String

        enum CodingKeys: String, CodingKey {
            case state, reconnects, description
            case lastFrameAgeSeconds = "last_frame_age_seconds"
            case lastError = "last_error"
        }

        // Absent values are written as null, so every key is always there.
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(state, forKey: .state)
            try c.encode(reconnects, forKey: .reconnects)
            try c.encode(lastFrameAgeSeconds, forKey: .lastFrameAgeSeconds)
            try c.encode(lastError, forKey: .lastError)
            try c.encode(description, forKey: .description)
        }
    }

    public struct Served: Codable, Equatable, Sendable {
        public var url: String
        public var width: Int
        public var height: Int
        public var framerate: Int
        public var encoder: String
    }

    /// Frames per second out of the element (its `stylize-stats`, once a second).
    public var fps: Double
    /// Seconds from a frame entering the element to leaving it, median and 95th percentile.
    public var latencyP50: Double
    public var latencyP95: Double
    /// Seconds one batch took to compute (a part of the latency), median and 95th percentile.
    public var batchSecondsP50: Double
    public var batchSecondsP95: Double
    public var framesOut: UInt64
    public var skipped: UInt64
    /// The prompt whose conditioning is in use (from `stylize-conditioning`); nil until
    /// the first is active. An empty requested prompt is reported as the model's default.
    public var activePrompt: String?
    /// The last prompt set (command line or POST /prompt); "" is the model's default.
    public var requestedPrompt: String
    /// Seconds the active prompt's encoding took.
    public var promptEncodeSeconds: Double?
    public var clients: Int
    public var source: Source
    public var served: Served
    public var uptimeSeconds: Double

    enum CodingKeys: String, CodingKey {
        case fps, clients, source, served, skipped
        case latencyP50 = "latency_p50"
        case latencyP95 = "latency_p95"
        case batchSecondsP50 = "batch_seconds_p50"
        case batchSecondsP95 = "batch_seconds_p95"
        case framesOut = "frames_out"
        case activePrompt = "active_prompt"
        case requestedPrompt = "requested_prompt"
        case promptEncodeSeconds = "prompt_encode_seconds"
        case uptimeSeconds = "uptime_seconds"
    }

    // Absent values are written as null, so every key is always there.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(fps, forKey: .fps)
        try c.encode(latencyP50, forKey: .latencyP50)
        try c.encode(latencyP95, forKey: .latencyP95)
        try c.encode(batchSecondsP50, forKey: .batchSecondsP50)
        try c.encode(batchSecondsP95, forKey: .batchSecondsP95)
        try c.encode(framesOut, forKey: .framesOut)
        try c.encode(skipped, forKey: .skipped)
        try c.encode(activePrompt, forKey: .activePrompt)
        try c.encode(requestedPrompt, forKey: .requestedPrompt)
        try c.encode(promptEncodeSeconds, forKey: .promptEncodeSeconds)
        try c.encode(clients, forKey: .clients)
        try c.encode(source, forKey: .source)
        try c.encode(served, forKey: .served)
        try c.encode(uptimeSeconds, forKey: .uptimeSeconds)
    }

    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)) ?? Data("{}".utf8)
    }
}

/// The relay's live state, written by the GStreamer threads and read by the control
/// endpoint; one lock, held only to copy values.
public final class RelayStatus: @unchecked Sendable {
    private let lock = NSLock()
    private var report: StatusReport
    private var lastFrameTime: Double?
    private let started = monotonicSeconds()

    public init(sourceDescription: String, served: StatusReport.Served, prompt: String) {
        report = StatusReport(
            fps: 0, latencyP50: 0, latencyP95: 0, batchSecondsP50: 0, batchSecondsP95: 0, framesOut: 0, skipped: 0,
            activePrompt: nil, requestedPrompt: prompt, promptEncodeSeconds: nil, clients: 0,
            source: .init(state: .connecting, reconnects: 0, lastFrameAgeSeconds: nil, lastError: nil,
                          description: sourceDescription),
            served: served, uptimeSeconds: 0)
    }

    public func snapshot() -> StatusReport {
        let now = monotonicSeconds()
        return lock.withLock {
            var r = report
            r.uptimeSeconds = now - started
            r.source.lastFrameAgeSeconds = lastFrameTime.map { now - $0 }
            return r
        }
    }

    func update(_ body: (inout StatusReport) -> Void) { lock.withLock { body(&report) } }

    func stats(fps: Double, p50: Double, p95: Double, batchP50: Double, batchP95: Double, framesOut: UInt64, skipped: UInt64) {
        update {
            $0.fps = fps
            $0.latencyP50 = p50
            $0.latencyP95 = p95
            $0.batchSecondsP50 = batchP50
            $0.batchSecondsP95 = batchP95
            $0.framesOut = framesOut
            $0.skipped = skipped
        }
    }

    func frameReceived(at time: Double) { lock.withLock { lastFrameTime = time } }

    func clientCountChanged(by delta: Int) -> Int {
        lock.withLock {
            report.clients = max(0, report.clients + delta)
            return report.clients
        }
    }
}

/// Seconds on a clock that never jumps.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
