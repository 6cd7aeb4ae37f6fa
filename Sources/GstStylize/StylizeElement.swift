import CGStreamer
import CShims
import Foundation
import StylizeCore
import StylizeEngine
import StylizeProperties
import Synchronization

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
    private var settings = Settings.initial()

    let batcher: FrameBatcher<HeldFrame, QueuedItem>
    /// The engine, and a model being loaded to replace it while playing.
    private let engines = EngineSlot()

    /// One stream's state (gst-plugins-rs' `State`): made in READY→PAUSED, dropped in
    /// PAUSED→READY, so nothing from one run leaks into the next.
    private struct StreamState {
        var format: VideoFormat?
        /// What the chain returns upstream, and whether EOS has gone by; reset by FLUSH_STOP
        /// and STREAM_START.
        var flow = GST_FLOW_OK
        var eosQueued = false
        var gaveUp = false
        var stopping = false
        var errorPosted = false
        var latencyAnswered = false
        var reportedProcessing: Double = 0
        /// This element's thread budget (the `threads` property at READY→PAUSED).
        let threads: Int
    }
    private let stateLock = NSLock()
    private var stream: StreamState?

    /// Streaming thread only, under the batcher's lock: the batch buffer the chain is
    /// converting frames into.
    private var openSlab: BatchSlab?

    // Guards posting from threads that may outlive the GObject (engine callbacks, model
    // loads): dispose clears `alive` before the object can go away.
    private let lifetimeLock = NSLock()
    private var alive = true

    // Worker thread only.
    private var lastStatsPost: Double = 0

    /// Elements between READY→PAUSED and PAUSED→READY in this process: the tensor pool,
    /// shared by all of them, is given back only when the last one stops.
    private static let running = Locked(0)

    init(_ raw: UnsafeMutablePointer<GstStylize>) {
        self.raw = raw
        batcher = FrameBatcher(batchSize: ElementProperty.batchSize.defaultInt)
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
        engines.clear()
    }

    /// Updates the stream's state if there is one (nil: not between READY→PAUSED and
    /// PAUSED→READY).
    @discardableResult
    private func withStream<R>(_ body: (inout StreamState) -> R) -> R? {
        stateLock.withLock {
            guard stream != nil else { return nil }
            return body(&stream!)
        }
    }

    /// The flow the chain returns upstream (FLUSHING outside a stream).
    private var currentFlow: GstFlowReturn { withStream { $0.flow } ?? GST_FLOW_FLUSHING }

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

    private func postWarning(_ kind: ErrorKind, _ text: String,
                             file: String = #fileID, function: String = #function, line: Int = #line) {
        log(GST_LEVEL_WARNING, element, text, file: file, function: function, line: line)
        whileAlive {
            postElementMessage(element, GST_MESSAGE_WARNING, kind, text: text, debug: nil,
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

    /// False for an id that is not one of the element's properties.
    func setProperty(_ id: guint, _ value: UnsafePointer<GValue>) -> Bool {
        guard let p = ElementProperty(rawValue: Int(id)) else { return false }
        guard var v = PropertyBridge.read(value, as: p) else { return true }
        if p == .model, case .string("") = v { v = .string(Settings.defaultModelPath()) }
        // The prompt reaches the engines under the settings lock: concurrent setters
        // store and apply in the same order, so the stream ends on the last one stored.
        let (changed, now) = settingsLock.withLock { () -> (Bool, Settings) in
            let changed = settings.set(p, v)
            if p == .prompt { for e in engines.engines { e.setPrompt(settings.string(.prompt)) } }
            return (changed, settings)
        }
        switch p {
        case .model:
            if changed { modelChanged(now.string(.model)) }
        case .batchSize:
            batcher.batchSize = now.int(.batchSize)
            if changed { latencyChanged() }
        case .maxBatchWait:
            batcher.maxBatchWait = now.maxBatchWaitSeconds
            if changed { latencyChanged() }
        default:
            break  // read from the settings at the next batch
        }
        return true
    }

    func getProperty(_ id: guint, _ value: UnsafeMutablePointer<GValue>) -> Bool {
        guard let p = ElementProperty(rawValue: Int(id)) else { return false }
        if p == .stats {
            g_value_take_boxed(value, statsStructure(name: "stylize-stats"))
            return true
        }
        let s = settingsLock.withLock { settings }
        // Left unset, these are the loaded model's.
        if p.spec.modelDefault, !s.explicitlySet.contains(p), let e = engines.engine,
           let v = StylizeSettings(s, model: e.modelDefaults).value(of: p) {
            PropertyBridge.write(v, into: value)
        } else if let v = s[p] {
            PropertyBridge.write(v, into: value)
        }
        return true
    }

    /// The `stats` structure (also the body of the `stylize-stats` message).
    private func statsStructure(name: String) -> UnsafeMutablePointer<GstStructure> {
        let snap = engines.engine?.statistics.snapshot()
        let s = gst_structure_new_empty(name)!
        stylize_structure_set_double(s, "fps", snap?.fps ?? 0)
        stylize_structure_set_double(s, "latency-p50", snap?.latencyP50 ?? 0)
        stylize_structure_set_double(s, "latency-p95", snap?.latencyP95 ?? 0)
        stylize_structure_set_double(s, "batch-seconds-p50", snap?.batchSecondsP50 ?? 0)
        stylize_structure_set_double(s, "batch-seconds-p95", snap?.batchSecondsP95 ?? 0)
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
            guard let self else { return }
            if error is OpenInferenceError {
                // A remote encoder that is down or answers garbage: the last good
                // conditioning stays in use and the request is retried; the stream goes on.
                self.postWarning(.libraryFailed, "Could not encode the prompt remotely (retrying; the last conditioning stays in use): \(error)")
                return
            }
            self.engineFailed("Could not encode the prompt: \(error)", kind: .libraryFailed)
        }
        e.onControlEvent = { [weak self] event in
            guard let self else { return }
            // The stream goes on in every case: a bad file is reported, not fatal.
            switch event {
            case .activated(let path, let frame): self.controlChanged(path: path, frame: frame)
            case .removed(let frame): self.controlChanged(path: "", frame: frame)
            case .failed(let path, let message):
                self.postError(.resourceNotFound, "Could not load control adapter '\(path)': \(message)")
            }
        }
    }

    /// A `stylize-control` element message: the adapter (path, "" for none) in use from
    /// stream frame `frame` on.
    private func controlChanged(path: String, frame: Int) {
        log(GST_LEVEL_INFO, element, path.isEmpty ? "control adapter off from frame \(frame)"
                                                  : "control adapter '\(path)' active from frame \(frame)")
        let s = gst_structure_new_empty("stylize-control")!
        stylize_structure_set_string(s, "path", path)
        stylize_structure_set_uint64(s, "frame", guint64(max(0, frame)))
        postApplicationStructure(s)
    }

    /// An error from the engine: posted once; the stream then returns ERROR upstream.
    private func engineFailed(_ text: String, kind: ErrorKind) {
        let first = withStream { st -> Bool in
            defer { st.errorPosted = true; if st.flow == GST_FLOW_OK { st.flow = GST_FLOW_ERROR } }
            return !st.errorPosted && !st.stopping
        } ?? true
        if first { postError(kind, text) }
    }

    private func loadEngine(_ path: String) throws -> StreamEngine {
        let (server, name) = settingsLock.withLock { (settings.string(.conditioningServer), settings.string(.conditioningModel)) }
        let e = try StreamEngineFactory.make(EngineSource(modelPath: path, conditioningServer: server, conditioningModel: name))
        adopt(e)
        return e
    }

    /// `model` set while the element holds an engine: load the new folder on a background
    /// thread (the stream keeps running on the old model) and switch at a batch boundary.
    private func modelChanged(_ path: String) {
        guard let generation = engines.beginLoad() else { return }  // NULL: loaded at NULL->READY
        log(GST_LEVEL_INFO, element, "loading model '\(path)' in the background")
        let t = Thread { [self] in
            do {
                let made = try loadEngine(path)
                try engines.finishLoad(made, generation: generation, settings: settingsLock.withLock { settings })
            } catch {
                if engines.isCurrent(generation) { postError(.resourceNotFound, "Could not load model '\(path)': \(error)") }
            }
        }
        t.name = "stylize-model-load"
        t.start()
    }

    // MARK: - states

    func changeState(_ transition: GstStateChange) -> GstStateChangeReturn {
        switch transition {
        case GST_STATE_CHANGE_NULL_TO_READY:
            let path = settingsLock.withLock { settings.string(.model) }
            do {
                engines.install(try loadEngine(path))
                log(GST_LEVEL_INFO, element, "model '\(path)' loaded")
            } catch {
                postError(.resourceNotFound, "Could not load model '\(path)': \(error)",
                          debug: "StreamEngineFactory.make failed for \(path)")
                return GST_STATE_CHANGE_FAILURE
            }
        case GST_STATE_CHANGE_READY_TO_PAUSED:
            let s = settingsLock.withLock { settings }
            batcher.batchSize = s.int(.batchSize)
            batcher.maxBatchWait = s.maxBatchWaitSeconds
            // The stream exists before the engine starts, so a model load finishing now
            // starts its engine too (and is swapped in at a batch).
            stateLock.withLock { stream = StreamState(threads: s.int(.threads)) }
            do {
                try engines.start(settings: s)
            } catch {
                stateLock.withLock { stream = nil }
                postError(.libraryInit, "Could not start model '\(s.string(.model))': \(error)")
                return GST_STATE_CHANGE_FAILURE
            }
            Self.running.withLock { $0 += 1 }
        default:
            break
        }

        let ret = gst_stylize_parent_change_state(raw, transition)
        if ret == GST_STATE_CHANGE_FAILURE {
            if transition == GST_STATE_CHANGE_READY_TO_PAUSED { streamStopped() }
            return ret
        }

        switch transition {
        case GST_STATE_CHANGE_PAUSED_TO_READY:
            streamStopped()
        case GST_STATE_CHANGE_READY_TO_NULL:
            engines.clear()
        default:
            break
        }
        return ret
    }

    /// The stream is over (the src pad's deactivation stopped the task): stop the engines,
    /// drop the stream's state and, if no other element in the process is running, give
    /// the pooled buffers back (the next stream may run at another size).
    private func streamStopped() {
        stopEngine()
        stateLock.withLock { stream = nil }
        openSlab = nil
        let last = Self.running.withLock { n -> Bool in
            n = max(0, n - 1)
            return n == 0
        }
        if last { TensorBufferPool.drain() }
    }

    private func stopEngine() {
        withStream { $0.stopping = true }
        engines.stop()
    }

    // MARK: - src pad activation (the worker task)

    func srcActivateMode(_ mode: GstPadMode, active: Bool) -> Bool {
        guard mode == GST_PAD_MODE_PUSH else { return false }
        if active {
            batcher.restart()
            withStream { $0.stopping = false }
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
        let entered = StreamStatistics.now()
        let ref = BufferRef(buffer)
        guard let (flow, format) = withStream({ ($0.flow, $0.format) }) else { return GST_FLOW_FLUSHING }
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
        defer { mapped.unmap() }
        // Converted straight into the frame's slot of its batch's buffer (outside the
        // batcher's lock; the worker does not take that batch until the frame is in).
        let queued = (try? batcher.push(making: { slot -> HeldFrame in
            if slot.index == 0 || !(openSlab?.fits(format, slot: slot.index) ?? false) {
                openSlab = BatchSlab(capacity: slot.batchSize, width: format.width, height: format.height)
            }
            let slab = openSlab!
            slab.convert(mapped.planes, colorimetry: format.colorimetry, into: slot.index)
            return HeldFrame(buffer: ref, format: format, slab: slab, slot: slot.index, entered: entered)
        })) ?? false
        if !queued {
            // Flushing, stopped, or the worker gave up (then say why).
            let flow = currentFlow
            return flow == GST_FLOW_OK ? GST_FLOW_FLUSHING : flow
        }
        return currentFlow
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
            withStream {
                $0.flow = GST_FLOW_OK
                $0.eosQueued = false
                $0.gaveUp = false
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
            withStream { $0.format = format }
            return enqueue(event)
        case GST_EVENT_EOS:
            let failed = withStream { st -> GstFlowReturn? in
                st.eosQueued = true
                return isFatal(st.flow) ? st.flow : nil
            } ?? nil
            if let failed {
                // The worker has stopped on an error: it will not forward this EOS.
                gst_event_unref(event)
                giveUp(failed)
                return true
            }
            return enqueue(event)
        default:
            if isSerialized(event) {
                if type == GST_EVENT_STREAM_START { withStream { $0.eosQueued = false; $0.gaveUp = false } }
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
            if currentFlow == GST_FLOW_OK,
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
        let (batch, waitMs) = settingsLock.withLock { (settings.int(.batchSize), settings.int(.maxBatchWait)) }
        let format = withStream { $0.format } ?? nil
        let e = engines.engine
        let wait = waitMs > 0 && batch > 1 ? GstClockTime(waitMs) * 1_000_000 : nil
        var hold: GstClockTime = 0
        if let d = format?.frameDuration {
            hold = GstClockTime(batch - 1) &* d
            if let wait { hold = min(hold, wait) }
        } else if let wait {
            hold = wait
        }
        let processing = max(0, e?.worstBatchSeconds ?? 0)
        withStream {
            $0.latencyAnswered = true
            $0.reportedProcessing = processing
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
            // A new segment (stream start, every seek and flush) or new caps: the next frames
            // do not continue the previous ones, so the temporal state starts over.
            if isCaps || ref.type == GST_EVENT_SEGMENT { engines.engine?.discontinuity() }
            if !gst_pad_push_event(srcpad, event).isTrue {
                log(GST_LEVEL_DEBUG, element, "downstream refused \(String(cString: gst_event_type_get_name(ref.type)))")
                if isCaps {
                    withStream { if $0.flow == GST_FLOW_OK { $0.flow = GST_FLOW_NOT_NEGOTIATED } }
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
        withStream { if $0.flow == GST_FLOW_OK { $0.flow = ret } }
        _ = gst_pad_pause_task(srcpad)
        guard ret != GST_FLOW_FLUSHING else { return }
        // Nothing will take frames any more: release a chain blocked on the full queue so
        // it returns `ret` upstream, and drop what is held.
        batcher.startFlushing()
        if isFatal(ret), withStream({ $0.eosQueued }) == true { giveUp(ret) }
    }

    /// Upstream has already sent EOS, so it will not see our flow return: report the error
    /// and end the stream downstream (what GST_ELEMENT_FLOW_ERROR users do).
    private func giveUp(_ ret: GstFlowReturn) {
        let first = withStream { st -> Bool in
            defer { st.gaveUp = true }
            return !st.gaveUp
        } ?? false
        guard first else { return }
        if ret != GST_FLOW_ERROR || withStream({ $0.errorPosted }) != true {
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
        guard let engine = engines.forBatch() else {
            engineFailed("No model loaded", kind: .libraryInit)
            return GST_FLOW_ERROR
        }
        // One copy of the settings per batch: passthrough and the engine's see the same.
        let batchSettings = settingsLock.withLock { settings }
        if batchSettings.bool(.passthrough) { return push(frames, engine: engine) }
        let (w, h) = (frames[0].format.width, frames[0].format.height)
        let per = w * h * 3
        let input = BatchSlab.input(for: frames)
        let settingsNow = StylizeSettings(batchSettings, model: engine.modelDefaults)
        let threads = withStream { $0.threads } ?? 0

        let output: Tensor
        do {
            output = try ThreadBudget.with(threads: threads) { try engine.process(input, settings: settingsNow) }
        } catch {
            if withStream({ $0.stopping }) != false { return GST_FLOW_FLUSHING }
            engineFailed("Processing a batch of \(frames.count) \(w)x\(h) frames failed: \(error)", kind: .libraryFailed)
            return GST_FLOW_ERROR
        }
        guard output.shape == input.shape else {
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
            // Measured before the push: downstream (a sink syncing to the clock) may
            // hold the push, and that wait is not ours.
            engine.statistics.frameLatency(StreamStatistics.now() - frame.entered)
            let ret = gst_pad_push(srcpad, buffer)
            if ret != GST_FLOW_OK { return ret }  // the remaining frames are released with `frames`
        }
        afterBatch(engine)
        return GST_FLOW_OK
    }

    /// `passthrough`: the frames' own buffers, untouched.
    private func push(_ frames: [HeldFrame], engine: StreamEngine) -> GstFlowReturn {
        for frame in frames {
            guard let buffer = frame.buffer.take() else { continue }
            engine.statistics.frameLatency(StreamStatistics.now() - frame.entered)
            let ret = gst_pad_push(srcpad, buffer)
            if ret != GST_FLOW_OK { return ret }
        }
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
        let grew = withStream { st -> Bool in
            guard st.latencyAnswered, worst > st.reportedProcessing * 1.25 + 0.005 else { return false }
            st.reportedProcessing = worst
            return true
        } ?? false
        if grew {
            log(GST_LEVEL_INFO, element, "worst batch time grew to \(worst) s, posting LATENCY")
            postLatencyMessage()
        }
    }
}
