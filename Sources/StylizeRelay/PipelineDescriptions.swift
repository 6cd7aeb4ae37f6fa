/// The served picture: raw video between the source pipeline and the served pipeline.
public struct ServedFormat: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var framerate: Int

    public init(width: Int, height: Int, framerate: Int) {
        self.width = width
        self.height = height
        self.framerate = framerate
    }

    /// I420: what H.264 encoders take and one of the element's formats, so nothing is
    /// converted between the source and the encoder except inside the element.
    /// Square pixels: videoscale letterboxes a source of another aspect ratio.
    public var rawCaps: String {
        "video/x-raw,format=I420,width=\(width),height=\(height),pixel-aspect-ratio=1/1"
    }

    public var rawCapsWithRate: String { rawCaps + ",framerate=\(framerate)/1" }

    public var frameDurationNanoseconds: UInt64 { 1_000_000_000 / UInt64(framerate) }

    /// Frames the served pipeline's appsrc queues: at least 40 ms' worth, so the latency
    /// it can absorb covers a sink's 20 ms processing deadline.
    public var feedQueueFrames: Int { max(2, (framerate + 24) / 25) }
}

/// gst-launch descriptions of the two pipelines.
public enum PipelineDescriptions {
    /// Names the relay looks elements up by.
    public static let feedName = "feed"
    public static let stylizeName = "stylize"
    public static let framesName = "frames"

    /// The source pipeline: the source, decoded, converted and scaled to `format`, into an
    /// appsink that keeps only the newest frame (the frame pump sets the served rate).
    /// appsink syncs to the clock so a non-live source (a file) plays at its own speed.
    public static func source(_ spec: SourceSpec, format: ServedFormat, latencyMs: UInt = 200,
                              transport: RTSPTransport = .tcp) -> String {
        let head: String
        switch spec {
        case let .uri(uri):
            if let scheme = RelayOptions.scheme(of: uri), ["rtsp", "rtsps", "rtspt", "rtspu"].contains(scheme) {
                let protocols = transport == .auto ? "" : " protocols=\(transport.rawValue)"
                // Only the video stream goes to the decoder; other streams stay unlinked.
                head = "rtspsrc location=\(LaunchSyntax.quote(uri)) latency=\(latencyMs)\(protocols)"
                    + " ! application/x-rtp,media=video ! decodebin"
            } else {
                head = "uridecodebin uri=\(LaunchSyntax.quote(uri)) caps=video/x-raw expose-all-streams=false"
            }
        case let .pipeline(description):
            head = description
        }
        return head + " ! videoconvert ! videoscale ! \(format.rawCaps)"
            + " ! appsink name=\(framesName) sync=true max-buffers=1 drop=true"
    }

    /// The served pipeline, as the RTSP media factory's launch line: frames from the pump
    /// (appsrc: live, stamped on arrival, dropping the oldest queued frame when the element
    /// falls behind rather than adding latency) → stylize → H.264 → RTP. config-interval=-1
    /// repeats SPS/PPS with every keyframe so a client that joins late can decode.
    /// appsrc reports its queue as the latency it can absorb (by default it reports none,
    /// and the network sinks then warn that the pipeline cannot meet their deadline).
    public static func served(format: ServedFormat, stylize: StylizeOptions, encoder: H264Encoder, kbps: UInt) -> String {
        let stylizeProperties = [(name: "name", value: stylizeName)] + stylize.properties
        let queued = format.feedQueueFrames
        return "( appsrc name=\(feedName) is-live=true format=time do-timestamp=true"
            + " max-bytes=0 max-buffers=\(queued) leaky-type=downstream"
            + " min-latency=0 max-latency=\(UInt64(queued) * format.frameDurationNanoseconds)"
            + " caps=\(LaunchSyntax.quote(format.rawCapsWithRate))"
            + " ! stylize \(LaunchSyntax.assignments(stylizeProperties))"
            + " ! videoconvert ! video/x-raw,format=I420"
            + " ! \(encoder.element(kbps: kbps, framerate: format.framerate))"
            + " ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    }

    /// The elements the two pipelines need besides `stylize` and the encoder, with what
    /// each is for and the Debian package that installs it.
    public static func requiredElements(for spec: SourceSpec) -> [(element: String, purpose: String, package: String)] {
        var list: [(String, String, String)] = [
            ("appsrc", "frames into the served pipeline", "gstreamer1.0-plugins-base"),
            ("appsink", "frames out of the source pipeline", "gstreamer1.0-plugins-base"),
            ("videoconvert", "colour conversion", "gstreamer1.0-plugins-base"),
            ("videoscale", "scaling to the served size", "gstreamer1.0-plugins-base"),
            ("rtph264pay", "RTP payloading", "gstreamer1.0-plugins-good"),
        ]
        if case let .uri(uri) = spec {
            if let scheme = RelayOptions.scheme(of: uri), scheme.hasPrefix("rtsp") {
                list.append(("rtspsrc", "reading the RTSP source", "gstreamer1.0-plugins-good"))
                list.append(("decodebin", "decoding the source", "gstreamer1.0-plugins-base"))
            } else {
                list.append(("uridecodebin", "reading and decoding the source", "gstreamer1.0-plugins-base"))
            }
        }
        return list
    }
}
