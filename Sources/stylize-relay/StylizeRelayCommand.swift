import ArgumentParser
import Foundation
#if os(Linux)
import CSystem
#endif
import Logging
import StylizeRelay

@main
struct StylizeRelayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stylize-relay",
        abstract: "Restyle a live stream with the stylize element and serve it over RTSP.",
        discussion: """
        Pulls --source (or --source-pipeline), restyles it with one stylize pipeline shared \
        by every client, and serves it as H.264 at rtsp://HOST:PORT/MOUNT. When the source \
        drops, clients stay connected (its last frame, then black frames, are served) and \
        the source is reconnected with backoff.

        Control endpoint (HTTP on --control-host:--control-port):
          GET  /status  JSON: fps, latency_p50, latency_p95 (a frame's time in the
                        element), batch_seconds_p50, batch_seconds_p95 (compute),
                        active_prompt, requested_prompt, clients,
                        source {state, reconnects, ...}
                        (state: connecting, playing or reconnecting)
          POST /prompt  body: the prompt as plain text, or {"prompt": "..."}

        The stylize plugin is loaded from beside this executable (.build/release holds \
        both); with GST_PLUGIN_PATH set, or none beside it, from the GStreamer registry.

        Examples:
          stylize-relay --source rtsp://camera.local:554/stream --prompt "ink"
          stylize-relay --source-pipeline "v4l2src device=/dev/video0"
          gst-play-1.0 rtsp://127.0.0.1:8554/stylize
          curl -d "an oil painting" http://127.0.0.1:8555/prompt
        """)

    @OptionGroup var options: RelayOptions

    func run() throws {
        #if os(Linux)
        // Every source restart brings new decoder and RTSP threads, and glibc gives new
        // threads new malloc arenas (up to 8 per core), each keeping what it freed: the
        // soak (tools/soak/relay_churn.py) measured +2.9 MiB per restart, flat with one
        // arena per core.
        _ = mallopt(M_ARENA_MAX, Int32(max(2, ProcessInfo.processInfo.activeProcessorCount)))
        #endif
        let level = options.control.logLevelValue ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        try Relay(options: options).run()
    }
}
