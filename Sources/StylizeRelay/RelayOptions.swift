import ArgumentParser
import Foundation
import Logging

/// How rtspsrc reaches an RTSP source.
public enum RTSPTransport: String, ExpressibleByArgument, CaseIterable, Sendable {
    /// RTP interleaved in the RTSP connection: a source that goes away closes it, so the
    /// drop is seen at once (with UDP only the stall watchdog notices).
    case tcp
    case udp
    /// rtspsrc's own order (UDP unicast, multicast, then TCP).
    case auto
}

/// Where the frames come from.
public enum SourceSpec: Equatable, Sendable {
    case uri(String)
    case pipeline(String)
}

/// Every option of `stylize-relay`, in groups as --help shows them (the command in
/// Sources/stylize-relay adds only the overview). Parsed here, in the library, so the
/// tests parse exactly what the command does.
public struct RelayOptions: ParsableArguments {
    @OptionGroup(title: "Source")
    public var source: SourceOptions

    @OptionGroup(title: "Served stream")
    public var served: ServedOptions

    @OptionGroup(title: "stylize element (the element's properties, as in gst-inspect-1.0 stylize)")
    public var stylize: StylizeOptions

    @OptionGroup(title: "Control endpoint and logs")
    public var control: ControlOptions

    public init() {}

    /// "rtsp" for "rtsp://host/x"; nil when `uri` has no scheme.
    static func scheme(of uri: String) -> String? {
        guard let r = uri.range(of: "://"), r.lowerBound > uri.startIndex else { return nil }
        let s = uri[..<r.lowerBound]
        guard s.first!.isLetter, s.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return nil }
        return s.lowercased()
    }
}

public struct SourceOptions: ParsableArguments {
    @Option(name: .customLong("source"),
            help: ArgumentHelp("Source URI: rtsp://, rtsps:// or rtspt:// (read with rtspsrc), or any URI uridecodebin reads (file://, http://).",
                               valueName: "uri"))
    public var uri: String?

    @Option(name: .customLong("source-pipeline"),
            help: ArgumentHelp("A GStreamer source description instead of --source, e.g. \"videotestsrc is-live=true\" or \"v4l2src device=/dev/video0\". Its output is converted and scaled to the served size.",
                               valueName: "description"))
    public var pipeline: String?

    @Option(name: .customLong("source-latency"), help: ArgumentHelp("Jitter buffer of an RTSP source, in milliseconds.", valueName: "ms"))
    public var latency: UInt = 200

    @Option(help: "Transport to an RTSP source: tcp (a drop is seen at once), udp, or auto (rtspsrc's order).")
    public var rtspTransport: RTSPTransport = .tcp

    @Option(name: .customLong("source-timeout"),
            help: ArgumentHelp("Seconds without a frame after which the source counts as dropped (or as failed to connect) and is restarted.",
                               valueName: "seconds"))
    public var timeout: Double = 5

    @Option(help: ArgumentHelp("Longest wait between reconnection attempts; waits start at 0.25 s and double.", valueName: "seconds"))
    public var maxReconnectDelay: Double = 2

    @Option(help: ArgumentHelp("While the source is down its last frame is repeated for this long, then a black frame is served until it returns.",
                               valueName: "seconds"))
    public var slateAfter: Double = 1

    public init() {}

    public mutating func validate() throws {
        switch (uri, pipeline) {
        case (nil, nil): throw ValidationError("give a source: --source URI or --source-pipeline DESCRIPTION")
        case (.some, .some): throw ValidationError("give either --source or --source-pipeline, not both")
        case let (uri?, nil):
            guard RelayOptions.scheme(of: uri) != nil else {
                throw ValidationError("--source '\(uri)' is not a URI (scheme://...); for a GStreamer description use --source-pipeline")
            }
        case let (nil, description?):
            guard !description.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("--source-pipeline is empty")
            }
        }
        guard timeout > 0 else { throw ValidationError("--source-timeout must be positive") }
        guard maxReconnectDelay > 0 else { throw ValidationError("--max-reconnect-delay must be positive") }
        guard slateAfter >= 0 else { throw ValidationError("--slate-after must not be negative") }
    }

    public var spec: SourceSpec {
        if let uri { return .uri(uri) }
        return .pipeline(pipeline ?? "")
    }

    /// As the user wrote it (for messages and /status).
    public var shown: String { uri ?? pipeline ?? "" }
}

public struct ServedOptions: ParsableArguments {
    @Option(help: "Address the RTSP server listens on (0.0.0.0: every interface).")
    public var host: String = "0.0.0.0"

    @Option(help: "RTSP port (0: any free port, logged).")
    public var port: UInt16 = 8554

    @Option(help: "Mount point: clients open rtsp://HOST:PORT/MOUNT.")
    public var mount: String = "/stylize"

    @Option(help: "Served width in pixels (even).")
    public var width: Int = 640

    @Option(help: "Served height in pixels (even).")
    public var height: Int = 480

    @Option(help: "Served frames per second; frames are sent at this rate whatever the source's rate.")
    public var framerate: Int = 25

    @Option(help: ArgumentHelp("H.264 bitrate in kbit/s.", valueName: "kbps"))
    public var bitrate: UInt = 1024

    @Option(help: ArgumentHelp("H.264 encoder: auto (the first installed of \(H264Encoder.known.map(\.factory).joined(separator: ", "))) or one of them.",
                               valueName: "name"))
    public var encoder: String = "auto"

    public init() {}

    public mutating func validate() throws {
        for (name, v) in [("--width", width), ("--height", height)] {
            guard (16...8192).contains(v), v % 2 == 0 else {
                throw ValidationError("\(name) must be even and within 16-8192 (H.264 4:2:0), not \(v)")
            }
        }
        guard (1...240).contains(framerate) else { throw ValidationError("--framerate must be within 1-240, not \(framerate)") }
        guard bitrate > 0 else { throw ValidationError("--bitrate must be positive") }
        guard mount.hasPrefix("/"), mount.count > 1, !mount.contains(where: { $0 == " " || $0 == "?" || $0 == "#" }) else {
            throw ValidationError("--mount must be a path such as /stylize, not '\(mount)'")
        }
        guard encoder == "auto" || H264Encoder.known.contains(where: { $0.factory == encoder }) else {
            throw ValidationError("--encoder must be auto or one of \(H264Encoder.known.map(\.factory).joined(separator: ", ")), not '\(encoder)'")
        }
    }

    public var format: ServedFormat { ServedFormat(width: width, height: height, framerate: framerate) }
}

public struct ControlOptions: ParsableArguments {
    @Option(name: .customLong("control-host"),
            help: "Address of the HTTP control endpoint (GET /status, POST /prompt); it has no authentication, so loopback by default.")
    public var host: String = "127.0.0.1"

    @Option(name: .customLong("control-port"), help: "Port of the HTTP control endpoint (0: any free port, logged).")
    public var port: UInt16 = 8555

    @Option(help: "Log level: trace, debug, info, notice, warning, error or critical.")
    public var logLevel: String = "info"

    public init() {}

    public mutating func validate() throws {
        guard logLevelValue != nil else {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    public var logLevelValue: Logger.Level? { Logger.Level(rawValue: logLevel.lowercased()) }
}
