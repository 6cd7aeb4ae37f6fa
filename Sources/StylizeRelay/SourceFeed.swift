import CGStreamer
import CGstRtspServer
import Foundation
import Logging

/// Runs the source pipeline (PipelineDescriptions.source) on its own thread and hands
/// each frame to `latest`. When the source errors, ends, or stops delivering frames for
/// `timeout` seconds, the pipeline is torn down and built again after a backoff (0.25 s,
/// doubling up to `maxDelay`), for as long as the relay runs: a camera that reboots or a
/// server that restarts is picked up again without touching the served stream.
final class SourceFeed: @unchecked Sendable {
    static let initialDelay = 0.25

    private let description: String
    private let latest: LatestFrame
    private let status: RelayStatus
    private let timeout: Double
    private let maxDelay: Double
    private let logger: Logger

    private let lock = NSLock()
    private var running = false
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    init(description: String, latest: LatestFrame, status: RelayStatus, timeout: Double, maxDelay: Double, logger: Logger) {
        self.description = description
        self.latest = latest
        self.status = status
        self.timeout = timeout
        self.maxDelay = maxDelay
        self.logger = logger
    }

    /// Parses the description once, so a description that can never work (a syntax error,
    /// an element that is not installed, a property it does not have) stops the relay at
    /// start instead of feeding a reconnect loop.
    func validate(shownAs shown: String) throws {
        var error: UnsafeMutablePointer<GError>?
        let pipeline = gst_parse_launch_full(description, nil, GST_PARSE_FLAG_FATAL_ERRORS, &error)
        defer { if let pipeline { gst_object_unref(pipeline) } }
        if let message = takeErrorMessage(error) {
            throw RelayError.invalidSource(description: shown, reason: message)
        }
        if pipeline == nil { throw RelayError.invalidSource(description: shown, reason: "it does not parse") }
    }

    func start() {
        lock.withLock { running = true }
        let t = Thread { [self] in run() }
        t.name = "relay-source"
        t.start()
    }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        guard wasRunning else { return }
        wake.signal()
        finished.wait()
        status.update { $0.source.state = .stopped }
    }

    private var isRunning: Bool { lock.withLock { running } }

    private func run() {
        defer { finished.signal() }
        var delay = Self.initialDelay
        var attempts = 0
        while isRunning {
            if attempts > 0 {
                status.update { $0.source.reconnects += 1 }
            }
            attempts += 1
            logger.info("starting the source (attempt \(attempts)): \(description)")
            let outcome = runOnce()
            guard isRunning else { break }
            if outcome.played { delay = Self.initialDelay }
            status.update {
                $0.source.state = .reconnecting
                $0.source.lastError = outcome.reason
            }
            let verb = outcome.played ? "dropped" : "did not start"
            logger.warning("source \(verb): \(outcome.reason); reconnecting in \(String(format: "%.2f", delay)) s")
            _ = wake.wait(timeout: .now() + delay)
            delay = min(delay * 2, maxDelay)
        }
    }

    /// Builds, plays and watches one instance of the source pipeline until it fails or
    /// the relay stops. `played`: whether any frame arrived.
    private func runOnce() -> (played: Bool, reason: String) {
        var error: UnsafeMutablePointer<GError>?
        guard let pipeline = gst_parse_launch_full(description, nil, GST_PARSE_FLAG_FATAL_ERRORS, &error) else {
            return (false, takeErrorMessage(error) ?? "the source description does not parse")
        }
        if let message = takeErrorMessage(error) {
            gst_object_unref(pipeline)
            return (false, message)
        }
        let bus = gst_element_get_bus(pipeline)!
        let sink = childElement(pipeline, named: PipelineDescriptions.framesName)!
        defer {
            gst_element_set_state(pipeline, GST_STATE_NULL)
            gst_object_unref(sink)
            gst_object_unref(bus)
            gst_object_unref(pipeline)
        }

        var played = false
        if gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
            return (false, Self.pendingError(bus) ?? "the source pipeline could not start")
        }
        let started = monotonicSeconds()
        var lastFrame: Double?
        let appsink = UnsafeMutableRawPointer(sink).assumingMemoryBound(to: GstAppSink.self)
        while isRunning {
            if let sample = gst_app_sink_try_pull_sample(appsink, 100_000_000) {
                if let buffer = gst_sample_get_buffer(sample) {
                    let now = monotonicSeconds()
                    latest.store(gst_buffer_ref(buffer), at: now)
                    status.frameReceived(at: now)
                    lastFrame = now
                    if !played {
                        played = true
                        status.update {
                            $0.source.state = .playing
                            $0.source.lastError = nil
                        }
                        logger.info("source playing after \(String(format: "%.2f", now - started)) s")
                    }
                }
                gst_sample_unref(sample)
            }
            while let message = gst_bus_pop_filtered(bus, GstMessageType(rawValue: GST_MESSAGE_ERROR.rawValue | GST_MESSAGE_EOS.rawValue | GST_MESSAGE_WARNING.rawValue)) {
                defer { gst_message_unref(message) }
                switch message.pointee.type {
                case GST_MESSAGE_ERROR:
                    let (text, debug) = parsedErrorMessage(message)
                    logger.debug("source error from \(messageSourceName(message)): \(text) (\(debug ?? ""))")
                    return (played, "\(messageSourceName(message)): \(text)")
                case GST_MESSAGE_EOS:
                    return (played, "end of stream")
                default:
                    let (text, _) = parsedErrorMessage(message)
                    logger.debug("source warning from \(messageSourceName(message)): \(text)")
                }
            }
            let now = monotonicSeconds()
            if let lastFrame, now - lastFrame > timeout {
                return (played, "no frame for \(formatSeconds(timeout)) s")
            }
            if lastFrame == nil, now - started > timeout {
                return (played, "no frame within \(formatSeconds(timeout)) s of starting")
            }
        }
        return (played, "stopped")
    }

    /// The text of an ERROR already on the bus, if any.
    private static func pendingError(_ bus: UnsafeMutablePointer<GstBus>) -> String? {
        guard let message = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR) else { return nil }
        defer { gst_message_unref(message) }
        return "\(messageSourceName(message)): \(parsedErrorMessage(message).text)"
    }
}

func formatSeconds(_ s: Double) -> String { String(format: s == s.rounded() ? "%.0f" : "%.2f", s) }
