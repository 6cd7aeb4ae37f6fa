import CGStreamer
import CGstRtspServer
import Foundation
import Logging

/// The RTSP side: a gst-rtsp-server with one shared media factory at the mount point,
/// whose media (the served pipeline) is built and prepared once at start and kept
/// prepared for the relay's lifetime. Clients come and go without the pipeline being
/// rebuilt, so the model is loaded once, not per client, and the stream a client joins
/// is already running.
///
/// Every media the factory makes is registered: its appsrc joins the frame pump and its
/// `stylize` element gets prompt changes. Normally there is exactly one (a shared media is
/// keyed by the request URL's port, path and query, so a client spelling the URL with a
/// query string would get a second one; it works, at twice the CPU).
final class RTSPService: @unchecked Sendable {
    private struct Registered {
        let media: UnsafeMutablePointer<GstRTSPMedia>
        let appsrc: UnsafeMutablePointer<GstElement>
        let stylize: UnsafeMutablePointer<GstElement>
    }

    private let server: UnsafeMutablePointer<GstRTSPServer>
    private let factory: UnsafeMutablePointer<GstRTSPMediaFactory>
    private let mount: String
    private let pump: FramePump
    private let status: RelayStatus
    private let logger: Logger

    private let lock = NSLock()
    private var registered: [Registered] = []
    private var clientAddresses: [UnsafeMutableRawPointer: String] = [:]
    private var heldMedia: UnsafeMutablePointer<GstRTSPMedia>?
    private var serverSource: UnsafeMutablePointer<GSource>?
    private var cleanupSource: guint = 0
    private var failure: String?
    private var prepared = false

    /// Called once, from a GStreamer thread, when the served pipeline posts an ERROR.
    var onFailure: ((String) -> Void)?

    init(host: String, port: UInt16, mount: String, launch: String, pump: FramePump, status: RelayStatus, logger: Logger) {
        self.mount = mount
        self.pump = pump
        self.status = status
        self.logger = logger
        server = gst_rtsp_server_new()
        gst_rtsp_server_set_address(server, host)
        gst_rtsp_server_set_service(server, String(port))
        factory = gst_rtsp_media_factory_new()
        gst_rtsp_media_factory_set_launch(factory, launch)
        gst_rtsp_media_factory_set_shared(factory, 1)

        let me = Unmanaged.passUnretained(self).toOpaque()
        let configure: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<GstRTSPMedia>?, UnsafeMutableRawPointer?) -> Void = { _, media, data in
            guard let media, let data else { return }
            Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue().configure(media)
        }
        connectSignal(factory, "media-configure", configure, me)
        let connected: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<GstRTSPClient>?, UnsafeMutableRawPointer?) -> Void = { _, client, data in
            guard let client, let data else { return }
            Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue().clientConnected(client)
        }
        connectSignal(server, "client-connected", connected, me)

        let mounts = gst_rtsp_server_get_mount_points(server)!
        gst_rtsp_mount_points_add_factory(mounts, mount, g_object_ref(factory).assumingMemoryBound(to: GstRTSPMediaFactory.self))
        g_object_unref(mounts)
    }

    /// Starts listening (on the default main context, served by the relay's main loop);
    /// returns the port bound.
    func listen(displayAddress: String) throws -> Int {
        var error: UnsafeMutablePointer<GError>?
        guard let source = gst_rtsp_server_create_source(server, nil, &error) else {
            throw RelayError.rtspListenFailed(address: displayAddress, reason: takeErrorMessage(error) ?? "unknown error")
        }
        g_source_attach(source, nil)
        lock.withLock { serverSource = source }
        // Sessions of clients that vanished without TEARDOWN expire here (their timeout is
        // 60 s); without this their UDP streams would go on being sent.
        let me = Unmanaged.passUnretained(self).toOpaque()
        let cleanup: @convention(c) (UnsafeMutableRawPointer?) -> gboolean = { data in
            guard let data else { return 0 }
            let service = Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue()
            if let pool = gst_rtsp_server_get_session_pool(service.server) {
                gst_rtsp_session_pool_cleanup(pool)
                g_object_unref(pool)
            }
            return 1
        }
        cleanupSource = g_timeout_add_seconds(2, cleanup, me)
        return Int(gst_rtsp_server_get_bound_port(server))
    }

    /// Builds the served pipeline for `url` (this server's URL of the mount) and prepares
    /// it: loads the model, starts the encoder, and waits until the first frame has been
    /// through. This prepared state is held until `shutdown`, which is what keeps the one
    /// pipeline alive while no client is connected.
    func prepareSharedMedia(url: String) throws {
        var parsed: UnsafeMutablePointer<GstRTSPUrl>?
        guard gst_rtsp_url_parse(url, &parsed) == GST_RTSP_OK, let parsed else {
            throw RelayError.servedPipelineFailed(reason: "cannot parse the served URL \(url)")
        }
        defer { gst_rtsp_url_free(parsed) }
        guard let media = gst_rtsp_media_factory_construct(factory, parsed) else {
            throw RelayError.servedPipelineFailed(reason: failureText ?? "the media factory could not build the pipeline")
        }
        var context = GstRTSPContext()
        let pool = gst_rtsp_server_get_thread_pool(server)!
        let thread = gst_rtsp_thread_pool_get_thread(pool, GST_RTSP_THREAD_TYPE_MEDIA, &context)
        g_object_unref(pool)
        guard gst_rtsp_media_prepare(media, thread).isTrue else {
            g_object_unref(media)
            throw RelayError.servedPipelineFailed(reason: failureText ?? "the pipeline did not preroll")
        }
        lock.withLock {
            heldMedia = media
            prepared = true
        }
        updateFeeding()
    }

    /// Feeds the served pipeline while it prepares (it needs frames to preroll) and while
    /// any client is connected.
    private func updateFeeding() {
        let isPrepared = lock.withLock { prepared }
        let feed = !isPrepared || status.snapshot().clients > 0
        guard feed != pump.isFeeding else { return }
        pump.isFeeding = feed
        if feed {
            logger.info("restyling resumes")
        } else {
            status.update { $0.fps = 0 }
            logger.info("no clients: restyling pauses until one connects")
        }
    }

    private var failureText: String? { lock.withLock { failure } }

    /// Sets `prompt` on every served `stylize` element (returns at once; the element
    /// reports when it is active).
    func setPrompt(_ prompt: String) {
        let elements = lock.withLock { registered.map(\.stylize) }
        for e in elements { setObjectProperty(e, "prompt", prompt) }
    }

    /// Stops serving: no new clients, the held media unprepared (pipeline to NULL).
    func shutdown() {
        let (source, media, cleanup) = lock.withLock { () -> (UnsafeMutablePointer<GSource>?, UnsafeMutablePointer<GstRTSPMedia>?, guint) in
            defer { serverSource = nil; heldMedia = nil; cleanupSource = 0 }
            return (serverSource, heldMedia, cleanupSource)
        }
        if cleanup != 0 { g_source_remove(cleanup) }
        if let source {
            g_source_destroy(source)
            g_source_unref(source)
        }
        if let media {
            _ = gst_rtsp_media_unprepare(media)
            g_object_unref(media)
        }
    }

    // MARK: - signal handlers

    /// A media was built (by us at start, or by the factory for a new URL key): find its
    /// appsrc and stylize, feed it, and watch its bus.
    private func configure(_ media: UnsafeMutablePointer<GstRTSPMedia>) {
        guard let bin = gst_rtsp_media_get_element(media) else { return }
        defer { gst_object_unref(bin) }
        guard let appsrc = childElement(bin, named: PipelineDescriptions.feedName),
              let stylize = childElement(bin, named: PipelineDescriptions.stylizeName) else {
            logger.error("served pipeline lacks its appsrc or stylize element")
            return
        }
        let count = lock.withLock { () -> Int in
            registered.append(Registered(media: media, appsrc: appsrc, stylize: stylize))
            return registered.count
        }
        pump.addTarget(appsrc)
        if count > 1 {
            logger.warning("a second served pipeline was built (a client used another URL for the mount); both run")
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        // The pipeline's own bus: the bin's is the pipeline's internal child bus, whose
        // sync handler belongs to GstBin. A sync handler sees each message on the thread
        // that posts it, leaving the bus's watch to gst-rtsp-server.
        var top = UnsafeMutableRawPointer(bin).assumingMemoryBound(to: GstObject.self)
        while let parent = top.pointee.parent { top = parent }
        if let bus = gst_element_get_bus(UnsafeMutableRawPointer(top).assumingMemoryBound(to: GstElement.self)) {
            let handler: @convention(c) (UnsafeMutablePointer<GstBus>?, UnsafeMutablePointer<GstMessage>?, gpointer?) -> GstBusSyncReply = { _, message, data in
                if let message, let data {
                    Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue().busMessage(message)
                }
                return GST_BUS_PASS
            }
            gst_bus_set_sync_handler(bus, handler, me, nil)
            gst_object_unref(bus)
        }
        let unprepared: @convention(c) (UnsafeMutablePointer<GstRTSPMedia>?, UnsafeMutableRawPointer?) -> Void = { media, data in
            guard let media, let data else { return }
            Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue().unregister(media)
        }
        connectSignal(media, "unprepared", unprepared, me)
        logger.debug("served pipeline configured")
    }

    private func unregister(_ media: UnsafeMutablePointer<GstRTSPMedia>) {
        let gone = lock.withLock { () -> [Registered] in
            let g = registered.filter { $0.media == media }
            registered.removeAll { $0.media == media }
            return g
        }
        for r in gone {
            pump.removeTarget(r.appsrc)
            gst_object_unref(r.appsrc)
            gst_object_unref(r.stylize)
        }
    }

    private func busMessage(_ message: UnsafeMutablePointer<GstMessage>) {
        switch message.pointee.type {
        case GST_MESSAGE_ELEMENT:
            guard let s = gst_message_get_structure(message), let cname = gst_structure_get_name(s) else { return }
            switch String(cString: cname) {
            case "stylize-stats":
                var fps = 0.0, p50 = 0.0, p95 = 0.0, b50 = 0.0, b95 = 0.0
                var out: guint64 = 0, skipped: guint64 = 0
                _ = gst_structure_get_double(s, "fps", &fps)
                _ = gst_structure_get_double(s, "latency-p50", &p50)
                _ = gst_structure_get_double(s, "latency-p95", &p95)
                _ = gst_structure_get_double(s, "batch-seconds-p50", &b50)
                _ = gst_structure_get_double(s, "batch-seconds-p95", &b95)
                _ = gst_structure_get_uint64(s, "frames-out", &out)
                _ = gst_structure_get_uint64(s, "skipped", &skipped)
                status.stats(fps: fps, p50: p50, p95: p95, batchP50: b50, batchP95: b95,
                             framesOut: UInt64(out), skipped: UInt64(skipped))
            case "stylize-conditioning":
                let prompt = gst_structure_get_string(s, "prompt").map { String(cString: $0) } ?? ""
                var seconds = 0.0
                _ = gst_structure_get_double(s, "seconds", &seconds)
                let changed = status.snapshot().activePrompt != prompt
                status.update {
                    $0.activePrompt = prompt
                    $0.promptEncodeSeconds = seconds
                }
                // Vision-aware encoders re-encode the same prompt every refresh-interval frames.
                if changed { logger.info("prompt active: '\(prompt)' (encoded in \(String(format: "%.2f", seconds)) s)") }
            default:
                break
            }
        case GST_MESSAGE_ERROR:
            let (text, debug) = parsedErrorMessage(message)
            let reason = "\(messageSourceName(message)): \(text)"
            logger.error("served pipeline error: \(reason)")
            if let debug { logger.debug("served pipeline error detail: \(debug)") }
            let first = lock.withLock { () -> Bool in
                defer { if failure == nil { failure = reason } }
                return failure == nil
            }
            if first { onFailure?(reason) }
        case GST_MESSAGE_WARNING:
            let (text, _) = parsedErrorMessage(message)
            logger.warning("served pipeline warning from \(messageSourceName(message)): \(text)")
        default:
            break
        }
    }

    private func clientConnected(_ client: UnsafeMutablePointer<GstRTSPClient>) {
        var address = "?"
        if let connection = gst_rtsp_client_get_connection(client), let ip = gst_rtsp_connection_get_ip(connection) {
            address = String(cString: ip)
        }
        lock.withLock { clientAddresses[UnsafeMutableRawPointer(client)] = address }
        let n = status.clientCountChanged(by: 1)
        logger.info("client connected from \(address) (\(n) connected)")
        updateFeeding()
        let me = Unmanaged.passUnretained(self).toOpaque()
        let closed: @convention(c) (UnsafeMutablePointer<GstRTSPClient>?, UnsafeMutableRawPointer?) -> Void = { client, data in
            guard let client, let data else { return }
            Unmanaged<RTSPService>.fromOpaque(data).takeUnretainedValue().clientClosed(client)
        }
        connectSignal(client, "closed", closed, me)
    }

    private func clientClosed(_ client: UnsafeMutablePointer<GstRTSPClient>) {
        let address = lock.withLock { clientAddresses.removeValue(forKey: UnsafeMutableRawPointer(client)) } ?? "?"
        let n = status.clientCountChanged(by: -1)
        logger.info("client from \(address) disconnected (\(n) connected)")
        updateFeeding()
    }
}
