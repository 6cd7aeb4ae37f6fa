import CGStreamer
import CGstRtspServer
import Foundation
import Logging

/// The relay: source pipeline → frame pump → served pipeline (one, shared by every RTSP
/// client) → clients; plus the control endpoint. `run` returns after SIGINT / SIGTERM and
/// throws a RelayError when something stops it.
public final class Relay {
    private let options: RelayOptions
    private let logger = Logger(label: "stylize-relay")

    private var loop: OpaquePointer?
    private let failureLock = NSLock()
    private var failure: RelayError?

    public init(options: RelayOptions) {
        self.options = options
    }

    public func run() throws {
        gst_init(nil, nil)
        let encoder = try checkInstallation()
        let format = options.served.format
        let sourceDescription = PipelineDescriptions.source(options.source.spec, format: format, latencyMs: options.source.latency,
                                                            transport: options.source.rtspTransport)
        let shownSource = options.source.shown
        let launch = PipelineDescriptions.served(format: format, stylize: options.stylize, encoder: encoder, kbps: options.served.bitrate)
        logger.debug("served pipeline: \(launch)")

        // The URL clients use (and the held media's key, which only counts port and path).
        let host = options.served.host
        let displayHost = ["0.0.0.0", "::"].contains(host) ? "127.0.0.1" : host.contains(":") ? "[\(host)]" : host
        let latest = LatestFrame()
        let status = RelayStatus(sourceDescription: shownSource,
                                 served: .init(url: "", width: format.width, height: format.height,
                                               framerate: format.framerate, encoder: encoder.factory),
                                 prompt: options.stylize.prompt)
        let source = SourceFeed(description: sourceDescription, latest: latest, status: status,
                                timeout: options.source.timeout, maxDelay: options.source.maxReconnectDelay,
                                logger: Logger(label: "stylize-relay.source"))
        try source.validate(shownAs: shownSource)

        let pump = FramePump(format: format, latest: latest, slateAfter: options.source.slateAfter,
                             logger: Logger(label: "stylize-relay.pump"))
        let rtsp = RTSPService(host: options.served.host, port: options.served.port, mount: options.served.mount, launch: launch,
                               pump: pump, status: status, logger: Logger(label: "stylize-relay.rtsp"))
        let port = try rtsp.listen(displayAddress: "\(options.served.host):\(options.served.port)")
        let url = "rtsp://\(displayHost):\(port)\(options.served.mount)"
        status.update { $0.served.url = url }

        let control = try ControlServer(host: options.control.host, port: options.control.port, status: status,
                                        setPrompt: { rtsp.setPrompt($0) }, logger: Logger(label: "stylize-relay.control"))
        let controlPort = try control.start()
        logger.info("control endpoint http://\(options.control.host):\(controlPort) (GET /status, POST /prompt)")

        let context = g_main_context_default()
        loop = g_main_loop_new(context, 0)
        rtsp.onFailure = { [weak self] reason in self?.fail(.servedPipelineFailed(reason: reason)) }

        pump.start()
        source.start()
        let started = monotonicSeconds()
        logger.info("loading the model and starting the served pipeline")
        do {
            try rtsp.prepareSharedMedia(url: url)
        } catch {
            source.stop()
            pump.stop()
            control.stop()
            rtsp.shutdown()
            throw error
        }
        let seconds = String(format: "%.1f", monotonicSeconds() - started)
        let everywhere = ["0.0.0.0", "::"].contains(host) ? "; listening on every interface" : ""
        logger.info("serving \(url) (\(format.width)x\(format.height) at \(format.framerate) fps) after \(seconds) s\(everywhere)")

        // From here SIGINT / SIGTERM stop the relay cleanly; before, they end the process
        // as usual (nothing to clean up that the kernel does not).
        installSignalHandlers()
        g_main_loop_run(loop)

        logger.info("shutting down")
        source.stop()
        control.stop()
        rtsp.shutdown()
        pump.stop()
        g_main_loop_unref(loop)
        loop = nil
        if let failure = failureLock.withLock({ failure }) { throw failure }
        logger.info("stopped")
    }

    /// Everything the pipelines need is installed: the element (registered here), the
    /// elements of both pipelines, something that reads the source URI, and an H.264
    /// encoder, which is returned.
    private func checkInstallation() throws -> H264Encoder {
        let plugin = try StylizePlugin.register(logger: logger)
        logger.info("stylize element from \(plugin)")
        for required in PipelineDescriptions.requiredElements(for: options.source.spec) where !elementIsInstalled(required.element) {
            throw RelayError.missingElement(element: required.element, purpose: required.purpose, package: required.package)
        }
        if case let .uri(uri) = options.source.spec, let scheme = RelayOptions.scheme(of: uri),
           gst_uri_protocol_is_supported(GST_URI_SRC, scheme) == 0 {
            throw RelayError.invalidSource(description: uri, reason: "no installed GStreamer element reads \(scheme):// URIs")
        }
        let encoder = try H264Encoder.choose(options.served.encoder, isInstalled: elementIsInstalled)
        let fallback = options.served.encoder == "auto" && encoder != H264Encoder.known[0]
        logger.info("H.264 encoder: \(encoder.factory)\(fallback ? " (\(H264Encoder.known[0].factory) is not installed)" : "")")
        return encoder
    }

    /// Stops the main loop with `error` as the outcome (any thread).
    private func fail(_ error: RelayError) {
        failureLock.withLock { if failure == nil { failure = error } }
        if let loop { g_main_loop_quit(loop) }
    }

    private func installSignalHandlers() {
        let me = Unmanaged.passUnretained(self).toOpaque()
        let handler: @convention(c) (gpointer?) -> gboolean = { data in
            guard let data else { return 0 }
            let relay = Unmanaged<Relay>.fromOpaque(data).takeUnretainedValue()
            relay.logger.info("signal received")
            if let loop = relay.loop { g_main_loop_quit(loop) }
            return 1
        }
        for signal in [SIGINT, SIGTERM] { g_unix_signal_add(signal, handler, me) }
    }
}
