/// Everything that stops the relay, each naming the thing at fault. The command prints
/// `description` and exits non-zero.
public enum RelayError: Error, CustomStringConvertible, Equatable {
    /// A GStreamer element the relay needs is not installed.
    case missingElement(element: String, purpose: String, package: String)
    /// None of the H.264 encoders the relay knows is installed (or the one asked for is not).
    case noH264Encoder(tried: [String])
    /// The `stylize` element was found neither in the registry nor next to the executable.
    case stylizeNotFound(searched: [String])
    /// `--source` / `--source-pipeline` does not describe a usable pipeline.
    case invalidSource(description: String, reason: String)
    /// The RTSP server could not listen (port in use, bad address).
    case rtspListenFailed(address: String, reason: String)
    /// The HTTP control endpoint could not listen.
    case controlListenFailed(address: String, reason: String)
    /// The served pipeline (appsrc → stylize → encoder → payloader) failed.
    case servedPipelineFailed(reason: String)

    public var description: String {
        switch self {
        case let .missingElement(element, purpose, package):
            return "GStreamer element '\(element)' (\(purpose)) is not installed; install the Debian package \(package)"
        case let .noH264Encoder(tried):
            return "no H.264 encoder: none of \(tried.joined(separator: ", ")) is installed; install "
                + "gstreamer1.0-plugins-ugly (x264enc) or gstreamer1.0-plugins-bad (openh264enc)"
        case let .stylizeNotFound(searched):
            return "the 'stylize' element was not found in the GStreamer registry nor at "
                + searched.joined(separator: ", ") + "; build it (swift build -c release) or set GST_PLUGIN_PATH to its folder"
        case let .invalidSource(description, reason):
            return "invalid source '\(description)': \(reason)"
        case let .rtspListenFailed(address, reason):
            return "RTSP server cannot listen on \(address): \(reason)"
        case let .controlListenFailed(address, reason):
            return "control endpoint cannot listen on \(address): \(reason)"
        case let .servedPipelineFailed(reason):
            return "the served pipeline failed: \(reason)"
        }
    }
}
