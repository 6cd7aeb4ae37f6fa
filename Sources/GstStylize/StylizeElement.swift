import CGStreamer
import CShims
import Foundation
import StylizeCore
import StylizeEngine

/// One frame between the chain function and the worker: the input buffer (kept so the
/// output is written back into it, which preserves PTS, DTS, duration, flags and metas),
/// its format, and its pixels as RGB floats [H, W, 3] in [-1, 1].
final class HeldFrame {
    let buffer: BufferRef
    let format: VideoFormat
    var pixels: [Float]

    init(buffer: BufferRef, format: VideoFormat, pixels: [Float]) {
        self.buffer = buffer
        self.format = format
        self.pixels = pixels
    }

    func sameGeometry(_ other: HeldFrame) -> Bool {
        format.width == other.format.width && format.height == other.format.height
    }
}

/// Serialized items travelling in order with the frames.
enum QueuedItem {
    case event(EventRef)
    case drain(DrainToken.Marker)
}

/// The Swift half of one `stylize` element. The C shim forwards every pad function,
/// state change and property access here (Entry.swift).
///
/// Threads: the streaming thread runs `chain` / `sinkEvent` (maps, converts, enqueues;
/// blocks only when the batcher is full); the src pad task runs `loopIteration` (takes
/// batches, runs the engine, writes back, pushes in order); the engine's side thread
/// serves conditioning and calls back for bus messages; the application thread sets
/// properties (stored under `settingsLock`, never blocking on the stream).
final class StylizeElement {
    let raw: UnsafeMutablePointer<GstStylize>
    var element: UnsafeMutablePointer<GstElement> { upcast(raw) }
    var object: UnsafeMutablePointer<GstObject> { upcast(raw) }
    var sinkpad: UnsafeMutablePointer<GstPad> { raw.pointee.sinkpad }
    var srcpad: UnsafeMutablePointer<GstPad> { raw.pointee.srcpad }

    private let settingsLock = NSLock()
    private var settings = Settings()

    let batcher: FrameBatcher<HeldFrame, QueuedItem>

    // Guarded by stateLock.
    private let stateLock = NSLock()
    private var engine: StreamEngine?
    private var pendingEngine: StreamEngine?      // a live `model` change, swapped in at a batch boundary
    private var engineStarted = false
    private var loadGeneration = 0
    private var inputFormat: VideoFormat?
    private var lastFlow = GST_FLOW_OK
    private var eosQueued = false
    private var gaveUp = false
    private var stopping = false
    private var errorPosted = false
    private var latencyAnswered = false
    private var reportedProcessing: Double = 0

    // Guards posting from threads that may outlive the GObject (engine callbacks, model
    // loads): dispose clears `alive` before the object can go away.
    private let lifetimeLock = NSLock()
    private var alive = true

    // Worker thread only.
    private var lastStatsPost: Double = 0

    init(_ raw: UnsafeMutablePointer<GstStylize>) {
        self.raw = raw
        batcher = FrameBatcher(batchSize: Int(STYLIZE_BATCH_SIZE_DEFAULT))
        batcher.stop()  // nothing flows until the src pad is activated
    }

    static func from(_ raw: UnsafeMutablePointer<GstStylize>) -> StylizeElement? {
        guard let impl = raw.pointee.impl else { return nil }
        return Unmanaged<StylizeElement>.fromOpaque(impl).takeUnretainedValue()
    }

    // MARK: - lifetime

    func dispose() {
        lifetimeLock.withLock { alive = false }
    }

    func finalize() {
        dispose()
        let (e, p) = stateLock.withLock { () -> (StreamEngine?, StreamEngine?) in
            defer { engine = nil; pendingEngine = nil; loadGeneration += 1 }
            return (engine, pendingEngine)
        }
        for x in [e, p].compactMap({ $0 }) { release(x) }
    }

    /// Runs `body` only while the element is alive (for threads the element does not join).
    private func whileAlive(_ body: () -> Void) {
        lifetimeLock.withLock { if alive { body() } }
    }

    private func postError(_ kind: ErrorKind, _ text: String, debug: String? = nil,
                           file: String = #fileID, function: String = #function, line: Int = #line) {
        log(GST_LEVEL_ERROR, element, text + (debug.map { " (\($0))" } ?? ""), file: file, function: function, line: line)
        whileAlive {
            postElementMessage(element, GST_MESSAGE_ERROR, kind, text: text, debug: debug,
                               file: file, function: function, line: line)
        }
    }

    private func postApplicationStructure(_ structure: UnsafeMutablePointer<GstStructure>) {
        var posted = false
        whileAlive {
            if let msg = gst_message_new_element(object, structure) {
                posted = true
                _ = gst_element_post_message(element, msg)
            }
        }
        if !posted { gst_structure_free(structure) }
    }

    private func postLatencyMessage() {
        whileAlive {
            if let msg = gst_message_new_latency(object) { _ = gst_element_post_message(element, msg) }
        }
    }

    // MARK: - properties

    func setProperty(_ id: StylizeProperty, _ value: UnsafePointer<GValue>) {
        switch id {
        case STYLIZE_PROP_MODEL:
            let path = g_value_get_string(value).map { String(cString: $0) } ?? ""
            let model = path.isEmpty ? Settings.defaultModelPath() : path
            let changed = settingsLock.withLock { () -> Bool in
                defer { settings.model = model }
                return settings.model != model
            }
            if changed { modelChanged(model) }
        case STYLIZE_PROP_PROMPT:
            let prompt = g_value_get_string(value).map { String(cString: $0) } ?? ""
            settingsLock.withLock { settings.prompt = prompt }
            let engines = stateLock.withLock { [engine, pendingEngine] }
            for e in engines.compactMap({ $0 }) { e.setPrompt(prompt) }
        case STYLIZE_PROP_BATCH_SIZE:
            let n = clamp(Int(g_value_get_uint(value)), STYLIZE_BATCH_SIZE_MIN, STYLIZE_BATCH_SIZE_MAX)
            let changed = settingsLock.withLock { () -> Bool in
                defer { settings.batchSize = n }
                return settings.batchSize != n
            }
            batcher.batchSize = n
            if changed { latencyChanged() }
        case STYLIZE_PROP_STEPS:
            let n = clamp(Int(g_value_get_uint(value)), STYLIZE_STEPS_MIN, STYLIZE_STEPS_MAX)
            settingsLock.withLock { settings.steps = n }
        case STYLIZE_PROP_STRENGTH:
            let v = g_value_get_float(value)
            settingsLock.withLock { settings.strength = v.isFinite ? min(1, max(0, v)) : Float(STYLIZE_STRENGTH_DEFAULT) }
        case STYLIZE_PROP_SEED:
            let v = UInt64(g_value_get_uint64(value))
            settingsLock.withLock { settings.seed = v }
        case STYLIZE_PROP_FIXED_NOISE:
            let v = g_value_get_boolean(value).isTrue
            settingsLock.withLock { settings.fixedNoise = v }
        case STYLIZE_PROP_REFRESH_INTERVAL:
            let n = clamp(Int(g_value_get_uint(value)), Int32(0), STYLIZE_REFRESH_INTERVAL_MAX)
            settingsLock.withLock { settings.refreshInterval = n }
        case STYLIZE_PROP_MAX_BATCH_WAIT:
            let n = clamp(Int(g_value_get_uint(value)), Int32(0), STYLIZE_MAX_BATCH_WAIT_MAX)
            let (changed, wait) = settingsLock.withLock { () -> (Bool, TimeInterval?) in
                defer { settings.maxBatchWait = n }
                var s = settings
                s.maxBatchWait = n
                return (settings.maxBatchWait != n, s.maxBatchWaitSeconds)
            }
            batcher.maxBatchWait = wait
            if changed { latencyChanged() }
        case STYLIZE_PROP_SIMILARITY_SKIP:
            let v = g_value_get_float(value)
            settingsLock.withLock { settings.similaritySkip = v.isFinite ? min(1, max(0, v)) : 0 }
        case STYLIZE_PROP_THREADS:
            let n = clamp(Int(g_value_get_uint(value)), Int32(0), STYLIZE_THREADS_MAX)
            settingsLock.withLock { settings.threads = n }
        default:
            break
        }
    }

    func getProperty(_ id: StylizeProperty, _ value: UnsafeMutablePointer<GValue>) {
        let s = settingsLock.withLock { settings }
        switch id {
        case STYLIZE_PROP_MODEL: g_value_set_string(value, s.model)
        case STYLIZE_PROP_PROMPT: g_value_set_string(value, s.prompt)
        case STYLIZE_PROP_BATCH_SIZE: g_value_set_uint(value, UInt32(s.batchSize))
        case STYLIZE_PROP_STEPS: g_value_set_uint(value, UInt32(s.steps))
        case STYLIZE_PROP_STRENGTH: g_value_set_float(value, s.strength)
        case STYLIZE_PROP_SEED: g_value_set_uint64(value, guint64(s.seed))
        case STYLIZE_PROP_FIXED_NOISE: g_value_set_boolean(value, s.fixedNoise.gboolean)
        case STYLIZE_PROP_REFRESH_INTERVAL: g_value_set_uint(value, UInt32(s.refreshInterval))
        case STYLIZE_PROP_MAX_BATCH_WAIT: g_value_set_uint(value, UInt32(s.maxBatchWait))
        case STYLIZE_PROP_SIMILARITY_SKIP: g_value_set_float(value, s.similaritySkip)
        case STYLIZE_PROP_THREADS: g_value_set_uint(value, UInt32(s.threads))
        case STYLIZE_PROP_STATS: g_value_take_boxed(value, statsStructure(name: "stylize-stats"))
        default: break
        }
    }

    private func clamp(_ v: Int, _ lo: Int32, _ hi: Int32) -> Int { min(Int(hi), max(Int(lo), v)) }

    /// The `stats` structure (also the body of the `stylize-stats` message).
    private func statsStructure(name: String) -> UnsafeMutablePointer<GstStructure> {
        let e = stateLock.withLock { engine }
        let snap = e?.statistics.snapshot()
        let s = gst_structure_new_empty(name)!
        stylize_structure_set_double(s, "fps", snap?.fps ?? 0)
        stylize_structure_set_double(s, "latency-p50", snap?.latencyP50 ?? 0)
        stylize_structure_set_double(s, "latency-p95", snap?.latencyP95 ?? 0)
        stylize_structure_set_double(s, "encoder-seconds", snap?.encoderSeconds ?? 0)
        stylize_structure_set_uint64(s, "frames-out", guint64(max(0, snap?.framesOut ?? 0)))
        stylize_structure_set_uint64(s, "skipped", guint64(max(0, snap?.skippedFrames ?? 0)))
        return s
    }

    /// batch-size or max-batch-wait changed: the latency we add changed with them.
    private func latencyChanged() {
        let state = element.pointee.current_state
        if state == GST_STATE_PLAYING || state == GST_STATE_PAUSED {
            log(GST_LEVEL_INFO, element, "latency changed, posting LATENCY")
            postLatencyMessage()
        }
    }

    // MARK: - engine

    /// Sets up a freshly made engine's callbacks (posted from the engine's side thread).
    private func adopt(_ e: StreamEngine) {
        e.onConditioningActivated = { [weak self] prompt, seconds in
            guard let self else { return }
            log(GST_LEVEL_INFO, self.element, "conditioning active for '\(prompt)' after \(seconds) s")
            let s = gst_structure_new_empty("stylize-conditioning")!
            stylize_structure_set_string(s, "prompt", prompt)
            stylize_structure_set_double(s, "seconds", seconds)
            self.postApplicationStructure(s)
        }
        e.onError = { [weak self] error in
            self?.engineFailed("Could not encode the prompt: \(error)", kind: .libraryFailed)
        }
    }

    private func release(_ e: StreamEngine) {
        e.stop()
        e.onConditioningActivated = nil
        e.onError = nil
    }

    /// An error from the engine: posted once; the stream then returns ERROR upstream.
    private func engineFailed(_ text: String, kind: ErrorKind) {
        let first = stateLock.withLock { () -> Bool in
            defer { errorPosted = true; if lastFlow == GST_FLOW_OK { lastFlow = GST_FLOW_ERROR } }
            return !errorPosted && !stopping
        }
        if first { postError(kind, text) }
    }

    private func loadEngine(_ path: String) throws -> StreamEngine {
        let e = try StreamEngineFactory.make(path)
        adopt(e)
        return e
    }

    /// `model` set while the element holds an engine: load the new folder on a background
    /// thread (the stream keeps running on the old model) and switch at a batch boundary.
    private func modelChanged(_ path: String) {
        let generation = stateLock.withLock { () -> Int? in
            guard engine != nil else { return nil }  // NULL: loaded at NULL->READY
            loadGeneration += 1
            return loadGeneration
        }
        guard let generation else { return }
        log(GST_LEVEL_INFO, element, "loading model '\(path)' in the background")
        let t = Thread { [self] in
            let made: StreamEngine
            do {
                made = try loadEngine(path)
            } catch {
                let current = stateLock.withLock { generation == loadGeneration }
                if current { postError(.resourceNotFound, "Could not load model '\(path)': \(error)") }
                return
            }
            let settingsNow = settingsLock.withLock { settings.engine }
            var discard: [StreamEngine] = [made]
            var failure: Error?
            stateLock.withLock {
                guard generation == loadGeneration, engine != nil else { return }
                if engineStarted {
                    do {
                        try made.start(settings: settingsNow)
                        if let old = pendingEngine { discard = [old] } else { discard = [] }
                        pendingEngine = made
                    } catch {
                        failure = error
                    }
                } else {
                    discard = [engine!]
                    engine = made
                }
            }
            for e in discard { release(e) }
            if let failure { postError(.libraryInit, "Could not start model '\(path)': \(failure)") }
        }
        t.name = "stylize-model-load"
        t.start()
    }

    /// The engine for the next batch (switching to a newly loaded model here).
    private func engineForBatch() -> StreamEngine? {
        let (current, old) = stateLock.withLock { () -> (StreamEngine?, StreamEngine?) in
            guard let p = pendingEngine else { return (engine, nil) }
            let old = engine
            engine = p
            pendingEngine = nil
            return (p, old)
        }
        if let old { release(old) }
        return current
    }

    // MARK: - states

    func changeState(_ transition: GstStateChange) -> GstStateChangeReturn {
        switch transition {
        case GST_STATE_CHANGE_NULL_TO_READY:
            let path = settingsLock.withLock { settings.model }
            do {
                let e = try loadEngine(path)
                stateLock.withLock {
                    engine = e
                    loadGeneration += 1
                    errorPosted = false
                }
                log(GST_LEVEL_INFO, element, "model '\(path)' loaded")
            } catch {
                postError(.resourceNotFound, "Could not load model '\(path)': \(error)",
                          debug: "StreamEngineFactory.make failed for \(path)")
                return GST_STATE_CHANGE_FAILURE
            }
        case GST_STATE_CHANGE_READY_TO_PAUSED:
            let s = settingsLock.withLock { settings }
            if s.threads > 0 {
                ThreadBudget.threads = s.threads
            }
            batcher.batchSize = s.batchSize
            batcher.maxBatchWait = s.maxBatchWaitSeconds
            // Marked started under the lock together with taking the engine, so a model
            // load finishing now starts its engine too (and is swapped in at a batch).
            let e = stateLock.withLock { () -> StreamEngine? in
                lastFlow = GST_FLOW_OK
                eosQueued = false
                gaveUp = false
                stopping = false
                errorPosted = false
                latencyAnswered = false
                reportedProcessing = 0
                engineStarted = engine != nil
                return engine
            }
            guard let e else { return GST_STATE_CHANGE_FAILURE }
            do {
                try e.start(settings: s.engine)
            } catch {
                stateLock.withLock { engineStarted = false }
                postError(.libraryInit, "Could not start model '\(s.model)': \(error)")
                return GST_STATE_CHANGE_FAILURE
            }
        default:
            break
        }

        let ret = gst_stylize_parent_change_state(raw, transition)
        if ret == GST_STATE_CHANGE_FAILURE {
            if transition == GST_STATE_CHANGE_READY_TO_PAUSED { stopEngine() }
            return ret
        }

        switch transition {
        case GST_STATE_CHANGE_PAUSED_TO_READY:
            // The src pad's deactivation stopped the task and the engine; a model loaded
            // meanwhile becomes the current one (it starts with the next READY->PAUSED).
            stopEngine()
            let old = stateLock.withLock { () -> StreamEngine? in
                guard let p = pendingEngine else { return nil }
                defer { engine = p; pendingEngine = nil }
                return engine
            }
            if let old { release(old) }
            stateLock.withLock { inputFormat = nil }
            // Buffers pooled for this stream's resolution are idle until it restarts, maybe
            // at another size: give them back (a running element re-pools in one batch).
            TensorBufferPool.drain()
        case GST_STATE_CHANGE_READY_TO_NULL:
            let engines = stateLock.withLock { () -> [StreamEngine] in
                defer { engine = nil; pendingEngine = nil; loadGeneration += 1 }
                return [engine, pendingEngine].compactMap { $0 }
            }
            for e in engines { release(e) }
        default:
            break
        }
        return ret
    }

    private func stopEngine() {
        let engines = stateLock.withLock { () -> [StreamEngine] in
            stopping = true
            engineStarted = false
            return [engine, pendingEngine].compactMap { $0 }
        }
        for e in engines { e.stop() }
    }

    // MARK: - src pad activation (the worker task)

    func srcActivateMode(_ mode: GstPadMode, active: Bool) -> Bool {
        guard mode == GST_PAD_MODE_PUSH else { return false }
        if active {
            batcher.restart()
            stateLock.withLock { stopping = false }
            startTask()
        } else {
            // Unblock everyone first: the chain (full queue), the worker (waiting for a
            // batch, or for the engine's first conditioning), then join the task.
            batcher.stop()
            stopEngine()
            _ = gst_pad_stop_task(srcpad)
        }
        return true
    }

    private func startTask() {
        lastStatsPost = StreamStatistics.now()
        _ = gst_pad_start_task(srcpad, { data in
            guard let data else { return }
            let raw = data.assumingMemoryBound(to: GstStylize.self)
            StylizeElement.from(raw)?.loopIteration()
        }, UnsafeMutableRawPointer(raw), nil)
    }

    // MARK: - streaming thread

    func chain(_ buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn {
        let ref = BufferRef(buffer)
        let (flow, format) = stateLock.withLock { (lastFlow, inputFormat) }
        if flow != GST_FLOW_OK { return flow }
        guard let format else {
            postError(.coreNegotiation, "Received a buffer before the caps were set")
            return GST_FLOW_NOT_NEGOTIATED
        }
        guard var mapped = MappedFrame(buffer: buffer, format: format, write: false) else {
            postError(.streamFormat, "Could not map a \(format.format.rawValue) \(format.width)x\(format.height) frame",
                      debug: "buffer of \(gst_buffer_get_size(buffer)) bytes is too small or its video meta is invalid")
            return GST_FLOW_ERROR
        }
        let count = format.width * format.height * 3
        var pixels = [Float](repeating: 0, count: count)
        pixels.withUnsafeMutableBufferPointer { out in
            ColorConversion.toRGB(mapped.planes, colorimetry: format.colorimetry,
                                  into: out.baseAddress!, rowStride: format.width * 3)
        }
        mapped.unmap()
        if !batcher.push(HeldFrame(buffer: ref, format: format, pixels: pixels)) {
            // Flushing, stopped, or the worker gave up (then say why).
            return stateLock.withLock { lastFlow == GST_FLOW_OK ? GST_FLOW_FLUSHING : lastFlow }
        }
        return stateLock.withLock { lastFlow }
    }

    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>) -> Bool {
        let type = event.pointee.type
        log(GST_LEVEL_DEBUG, element, "sink event \(String(cString: gst_event_type_get_name(type)))")
        switch type {
        case GST_EVENT_FLUSH_START:
            // Unblock the chain and the worker at once, dropping held frames; forward;
            // then wait for the worker's current iteration to end.
            batcher.startFlushing()
            let ok = gst_pad_push_event(srcpad, event).isTrue
            _ = gst_pad_pause_task(srcpad)
            return ok
        case GST_EVENT_FLUSH_STOP:
            batcher.stopFlushing()
            stateLock.withLock {
                lastFlow = GST_FLOW_OK
                eosQueued = false
                gaveUp = false
            }
            let ok = gst_pad_push_event(srcpad, event).isTrue
            if srcpad.pointee.mode == GST_PAD_MODE_PUSH { startTask() }
            return ok
        case GST_EVENT_CAPS:
            var caps: UnsafeMutablePointer<GstCaps>?
            gst_event_parse_caps(event, &caps)
            guard let caps, let format = VideoFormat(caps: caps) else {
                log(GST_LEVEL_WARNING, element, "refusing caps that are not one of the supported raw video formats")
                gst_event_unref(event)
                return false
            }
            stateLock.withLock { inputFormat = format }
            return enqueue(event)
        case GST_EVENT_EOS:
            let failed = stateLock.withLock { () -> GstFlowReturn? in
                eosQueued = true
                return isFatal(lastFlow) ? lastFlow : nil
            }
            if let failed {
                // The worker has stopped on an error: it will not forward this EOS.
                gst_event_unref(event)
                giveUp(failed)
                return true
            }
            return enqueue(event)
        default:
            if isSerialized(event) {
                if type == GST_EVENT_STREAM_START { stateLock.withLock { eosQueued = false; gaveUp = false } }
                return enqueue(event)
            }
            return gst_pad_event_default(sinkpad, object, event).isTrue
        }
    }

    /// Queues a serialized event behind the frames received before it.
    private func enqueue(_ event: UnsafeMutablePointer<GstEvent>) -> Bool {
        batcher.push(event: .event(EventRef(event)))  // dropped (and unreffed) when flushing
    }

    func sinkQuery(_ query: UnsafeMutablePointer<GstQuery>) -> Bool {
        switch query.pointee.type {
        case GST_QUERY_ALLOCATION:
            guard gst_pad_peer_query(srcpad, query).isTrue else { return false }
            // Frames wait in the batcher (two batches) and in the engine (one batch):
            // ask upstream pools for that many extra buffers so they never run dry.
            let extra = UInt32(3 * batcher.batchSize + 1)
            for i in 0..<gst_query_get_n_allocation_pools(query) {
                var pool: UnsafeMutablePointer<GstBufferPool>?
                var size: guint = 0, minBuffers: guint = 0, maxBuffers: guint = 0
                gst_query_parse_nth_allocation_pool(query, i, &pool, &size, &minBuffers, &maxBuffers)
                let newMin = minBuffers &+ extra
                let newMax = maxBuffers == 0 ? 0 : max(maxBuffers &+ extra, newMin)
                gst_query_set_nth_allocation_pool(query, i, pool, size, newMin, newMax)
                if let pool { gst_object_unref(UnsafeMutableRawPointer(pool)) }
            }
            return true
        case GST_QUERY_DRAIN:
            // Wait until every frame queued so far has been pushed, then let downstream drain.
            let token = DrainToken()
            if stateLock.withLock({ lastFlow == GST_FLOW_OK }),
               batcher.push(event: .drain(DrainToken.Marker(token))) { token.wait() }
            return gst_pad_peer_query(srcpad, query).isTrue
        default:
            return gst_pad_query_default(sinkpad, object, query).isTrue
        }
    }

    // MARK: - src pad queries

    func srcQuery(_ query: UnsafeMutablePointer<GstQuery>) -> Bool {
        switch query.pointee.type {
        case GST_QUERY_LATENCY:
            guard gst_pad_peer_query(sinkpad, query).isTrue else { return false }
            var live: gboolean = 0
            var minLatency: GstClockTime = 0, maxLatency: GstClockTime = 0
            gst_query_parse_latency(query, &live, &minLatency, &maxLatency)
            let ours = addedLatency()
            minLatency = minLatency == clockTimeNone ? ours : minLatency &+ ours
            if maxLatency != clockTimeNone { maxLatency = maxLatency &+ ours }
            gst_query_set_latency(query, live, minLatency, maxLatency)
            log(GST_LEVEL_DEBUG, element, "latency: adding \(ours) ns; min \(minLatency) max \(maxLatency)")
            return true
        default:
            return gst_pad_query_default(srcpad, object, query).isTrue
        }
    }

    /// (batch-size − 1) frame durations (capped by max-batch-wait when set; just
    /// max-batch-wait when the framerate is unknown) plus the worst batch processing time
    /// the engine has seen (0 before the first batch: a LATENCY message follows when it
    /// grows).
    func addedLatency() -> GstClockTime {
        let (batch, waitMs) = settingsLock.withLock { (settings.batchSize, settings.maxBatchWait) }
        let (format, e) = stateLock.withLock { (inputFormat, engine) }
        let wait = waitMs > 0 && batch > 1 ? GstClockTime(waitMs) * 1_000_000 : nil
        var hold: GstClockTime = 0
        if let d = format?.frameDuration {
            hold = GstClockTime(batch - 1) &* d
            if let wait { hold = min(hold, wait) }
        } else if let wait {
            hold = wait
        }
        let processing = max(0, e?.worstBatchSeconds ?? 0)
        stateLock.withLock {
            latencyAnswered = true
            reportedProcessing = processing
        }
        let processingNs = processing.isFinite ? GstClockTime(min(processing, 1e6) * 1e9) : 0
        return hold &+ processingNs
    }

    // MARK: - worker (src pad task)

    func loopIteration() {
        guard let item = batcher.next() else {
            _ = gst_pad_pause_task(srcpad)
            return
        }
        switch item {
        case .frames(let frames):
            let ret = run(frames)
            if ret != GST_FLOW_OK { stopOnFlow(ret) }
        case .event(.drain):
            break  // the marker's release signals the waiting DRAIN query
        case .event(.event(let ref)):
            guard let event = ref.take() else { return }
            let isCaps = ref.type == GST_EVENT_CAPS
            if !gst_pad_push_event(srcpad, event).isTrue {
                log(GST_LEVEL_DEBUG, element, "downstream refused \(String(cString: gst_event_type_get_name(ref.type)))")
                if isCaps {
                    stateLock.withLock { if lastFlow == GST_FLOW_OK { lastFlow = GST_FLOW_NOT_NEGOTIATED } }
                    stopOnFlow(GST_FLOW_NOT_NEGOTIATED)
                }
            }
        }
    }

    private func isFatal(_ ret: GstFlowReturn) -> Bool {
        ret == GST_FLOW_NOT_LINKED || ret.rawValue < GST_FLOW_EOS.rawValue
    }

    /// Downstream (or the engine) stopped the stream: pause the worker; the chain returns
    /// `ret` upstream from now on.
    private func stopOnFlow(_ ret: GstFlowReturn) {
        log(GST_LEVEL_INFO, element, "pausing the worker: \(flowName(ret))")
        stateLock.withLock { if lastFlow == GST_FLOW_OK { lastFlow = ret } }
        _ = gst_pad_pause_task(srcpad)
        guard ret != GST_FLOW_FLUSHING else { return }
        // Nothing will take frames any more: release a chain blocked on the full queue so
        // it returns `ret` upstream, and drop what is held.
        batcher.startFlushing()
        if isFatal(ret), stateLock.withLock({ eosQueued }) { giveUp(ret) }
    }

    /// Upstream has already sent EOS, so it will not see our flow return: report the error
    /// and end the stream downstream (what GST_ELEMENT_FLOW_ERROR users do).
    private func giveUp(_ ret: GstFlowReturn) {
        let first = stateLock.withLock { () -> Bool in
            defer { gaveUp = true }
            return !gaveUp
        }
        guard first else { return }
        if ret != GST_FLOW_ERROR || !stateLock.withLock({ errorPosted }) {
            postError(.streamFailed, "Internal data stream error.", debug: "streaming stopped, reason \(flowName(ret)) (\(ret.rawValue))")
        }
        _ = gst_pad_push_event(srcpad, gst_event_new_eos())
    }

    /// Runs one batch and pushes its frames in order. Frames of different sizes never
    /// share a batch (a CAPS event releases the frames before it), but a defensive split
    /// keeps every engine call rectangular.
    private func run(_ frames: [HeldFrame]) -> GstFlowReturn {
        var start = 0
        while start < frames.count {
            var end = start + 1
            while end < frames.count && frames[end].sameGeometry(frames[start]) { end += 1 }
            let ret = runGroup(Array(frames[start..<end]))
            if ret != GST_FLOW_OK { return ret }
            start = end
        }
        return GST_FLOW_OK
    }

    private func runGroup(_ frames: [HeldFrame]) -> GstFlowReturn {
        guard let engine = engineForBatch() else {
            engineFailed("No model loaded", kind: .libraryInit)
            return GST_FLOW_ERROR
        }
        let (w, h) = (frames[0].format.width, frames[0].format.height)
        let per = w * h * 3
        var data: [Float] = []
        data.reserveCapacity(per * frames.count)
        for f in frames {
            data.append(contentsOf: f.pixels)
            f.pixels = []
        }
        let input = Tensor(shape: [frames.count, h, w, 3], data: data)
        let settingsNow = settingsLock.withLock { settings.engine }

        let output: Tensor
        do {
            output = try engine.process(input, settings: settingsNow)
        } catch {
            if stateLock.withLock({ stopping }) { return GST_FLOW_FLUSHING }
            engineFailed("Processing a batch of \(frames.count) \(w)x\(h) frames failed: \(error)", kind: .libraryFailed)
            return GST_FLOW_ERROR
        }
        guard output.shape == input.shape, output.data.count == input.data.count else {
            engineFailed("The engine returned a batch of shape \(output.shape) for input \(input.shape)", kind: .libraryFailed)
            return GST_FLOW_ERROR
        }

        for (i, frame) in frames.enumerated() {
            guard let taken = frame.buffer.take() else { continue }
            let buffer = makeWritable(taken)
            guard var mapped = MappedFrame(buffer: buffer, format: frame.format, write: true) else {
                gst_buffer_unref(buffer)
                postError(.streamFailed, "Could not map an output frame for writing")
                return GST_FLOW_ERROR
            }
            output.data.withUnsafeBufferPointer { src in
                ColorConversion.fromRGB(src.baseAddress! + i * per, rowStride: w * 3, into: mapped.planes,
                                        colorimetry: frame.format.colorimetry)
            }
            mapped.unmap()
            let ret = gst_pad_push(srcpad, buffer)
            if ret != GST_FLOW_OK { return ret }  // the remaining frames are released with `frames`
        }
        afterBatch(engine)
        return GST_FLOW_OK
    }

    /// Once a second: `stylize-stats`; and a LATENCY message when the processing bound
    /// grew well past what the last LATENCY answer included.
    private func afterBatch(_ engine: StreamEngine) {
        let now = StreamStatistics.now()
        if now - lastStatsPost >= 1 {
            lastStatsPost = now
            postApplicationStructure(statsStructure(name: "stylize-stats"))
        }
        let worst = engine.worstBatchSeconds
        let grew = stateLock.withLock { () -> Bool in
            guard latencyAnswered, worst > reportedProcessing * 1.25 + 0.005 else { return false }
            reportedProcessing = worst
            return true
        }
        if grew {
            log(GST_LEVEL_INFO, element, "worst batch time grew to \(worst) s, posting LATENCY")
            postLatencyMessage()
        }
    }
}
