import CGStreamer
import CGstRtspServer
import Foundation
import Logging

/// The newest frame of the source pipeline, waiting for the pump.
final class LatestFrame: @unchecked Sendable {
    private let lock = NSLock()
    private var buffer: UnsafeMutablePointer<GstBuffer>?
    private var time: Double = 0

    /// Keeps `buffer` (its reference passes in) as the newest frame.
    func store(_ buffer: UnsafeMutablePointer<GstBuffer>, at time: Double) {
        let old = lock.withLock { () -> UnsafeMutablePointer<GstBuffer>? in
            defer { self.buffer = buffer; self.time = time }
            return self.buffer
        }
        if let old { gst_buffer_unref(old) }
    }

    /// A new reference to the newest frame, if it arrived within `maxAge` seconds of `now`.
    func take(maxAge: Double, now: Double) -> UnsafeMutablePointer<GstBuffer>? {
        lock.withLock {
            guard let buffer, now - time <= maxAge else { return nil }
            return gst_buffer_ref(buffer)
        }
    }

    func clear() {
        let old = lock.withLock { () -> UnsafeMutablePointer<GstBuffer>? in
            defer { buffer = nil }
            return buffer
        }
        if let old { gst_buffer_unref(old) }
    }

    deinit { clear() }
}

/// Feeds the served pipeline at exactly the served frame rate, whatever the source does:
/// the newest source frame (repeated when the source is slower, skipped frames when it is
/// faster), or a black frame once the source has been silent for `slateAfter` seconds.
/// So the served stream never stops and clients stay connected through source drops.
///
/// This, rather than intervideosink/intervideosrc, because the relay decides what a
/// viewer sees during a drop (hold, then black) and needs no gst-plugins-bad.
final class FramePump: @unchecked Sendable {
    private let format: ServedFormat
    private let latest: LatestFrame
    private let slateAfter: Double
    private let logger: Logger
    private let slate: UnsafeMutablePointer<GstBuffer>

    private let lock = NSLock()
    private var targets: [UnsafeMutablePointer<GstElement>] = []
    private var running = false
    private var feeding = true
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    init(format: ServedFormat, latest: LatestFrame, slateAfter: Double, logger: Logger) {
        self.format = format
        self.latest = latest
        self.slateAfter = slateAfter
        self.logger = logger
        slate = Self.blackFrame(format)
    }

    deinit {
        for t in targets { gst_object_unref(t) }
        gst_buffer_unref(slate)
    }

    /// Starts feeding `appsrc` too (a reference is taken).
    func addTarget(_ appsrc: UnsafeMutablePointer<GstElement>) {
        gst_object_ref(appsrc)
        lock.withLock { targets.append(appsrc) }
    }

    func removeTarget(_ appsrc: UnsafeMutablePointer<GstElement>) {
        let removed = lock.withLock { () -> Bool in
            guard let i = targets.firstIndex(of: appsrc) else { return false }
            targets.remove(at: i)
            return true
        }
        if removed { gst_object_unref(appsrc) }
    }

    /// Whether frames go to the targets. Off while nobody watches: the element then
    /// idles instead of restyling for no one (the pipeline stays prepared and PLAYING, and
    /// the encoder's next keyframe, at most a second after feeding resumes, lets a new
    /// client start).
    var isFeeding: Bool {
        get { lock.withLock { feeding } }
        set { lock.withLock { feeding = newValue } }
    }

    func start() {
        lock.withLock { running = true }
        let t = Thread { [self] in run() }
        t.name = "relay-frame-pump"
        thread = t
        t.start()
    }

    func stop() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { running = false }
            return running
        }
        if wasRunning { finished.wait() }
    }

    private func run() {
        defer { finished.signal() }
        let interval = 1 / Double(format.framerate)
        var next = monotonicSeconds()
        var servingSlate = true  // until the source's first frame
        while lock.withLock({ running }) {
            let now = monotonicSeconds()
            if next > now { usleep(useconds_t((next - now) * 1e6)) }
            let frame = latest.take(maxAge: slateAfter + interval, now: monotonicSeconds())
            if (frame == nil) != servingSlate {
                servingSlate = frame == nil
                if servingSlate {
                    logger.warning("no source frame for \(slateAfter) s: serving black frames until the source returns")
                } else {
                    logger.info("serving source frames")
                }
            }
            if isFeeding {
                push(frame ?? gst_buffer_ref(slate))
            } else if let frame {
                gst_buffer_unref(frame)
            }
            next += interval
            // After a stall (a suspended process, a slow push) start afresh rather than
            // sending a burst of frames to catch up.
            if monotonicSeconds() - next > interval { next = monotonicSeconds() }
        }
    }

    /// Pushes a copy of `frame` (its reference is consumed) to every target. Each push
    /// gets its own buffer sharing the pixels, stamped by appsrc (do-timestamp) on arrival.
    private func push(_ frame: UnsafeMutablePointer<GstBuffer>) {
        defer { gst_buffer_unref(frame) }
        let current = lock.withLock { targets }
        for appsrc in current {
            guard let copy = gst_buffer_copy(frame) else { continue }
            copy.pointee.pts = GST_CLOCK_TIME_NONE_VALUE
            copy.pointee.dts = GST_CLOCK_TIME_NONE_VALUE
            copy.pointee.duration = GstClockTime(format.frameDurationNanoseconds)
            copy.pointee.offset = GST_BUFFER_OFFSET_NONE_VALUE
            copy.pointee.offset_end = GST_BUFFER_OFFSET_NONE_VALUE
            // FLUSHING / EOS while the media changes state: the frame is dropped, as a live
            // source's would be.
            _ = UnsafeMutableRawPointer(appsrc).withMemoryRebound(to: GstAppSrc.self, capacity: 1) {
                gst_app_src_push_buffer($0, copy)
            }
        }
    }

    /// A black I420 frame of `format`, laid out as GstVideoInfo's defaults (as videoconvert
    /// writes the source's frames).
    static func blackFrame(_ format: ServedFormat) -> UnsafeMutablePointer<GstBuffer> {
        var info = GstVideoInfo()
        _ = gst_video_info_set_format(&info, GST_VIDEO_FORMAT_I420, guint(format.width), guint(format.height))
        let buffer = gst_buffer_new_allocate(nil, info.size, nil)!
        var map = GstMapInfo()
        guard gst_buffer_map(buffer, &map, GST_MAP_WRITE).isTrue else { return buffer }
        defer { gst_buffer_unmap(buffer, &map) }
        let offsets = withUnsafeBytes(of: info.offset) { Array($0.bindMemory(to: gsize.self)) }
        let strides = withUnsafeBytes(of: info.stride) { Array($0.bindMemory(to: gint.self)) }
        let chromaRows = (format.height + 1) / 2
        for plane in 0..<3 {
            let rows = plane == 0 ? format.height : chromaRows
            let value: UInt8 = plane == 0 ? 16 : 128  // video-range black, neutral chroma
            memset(map.data + Int(offsets[plane]), Int32(value), Int(strides[plane]) * rows)
        }
        return buffer
    }
}

// GST_CLOCK_TIME_NONE and GST_BUFFER_OFFSET_NONE are macros Swift does not import.
let GST_CLOCK_TIME_NONE_VALUE: GstClockTime = .max
let GST_BUFFER_OFFSET_NONE_VALUE: guint64 = .max
