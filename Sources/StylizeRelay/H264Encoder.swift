/// The H.264 encoders the relay knows, in order of preference, each with settings for live
/// streaming (no B-frames, one keyframe a second so a late-joining client starts within a
/// second).
public struct H264Encoder: Equatable, Sendable {
    public let factory: String
    /// The Debian package that installs it.
    public let package: String
    let settings: @Sendable (_ kbps: UInt, _ framerate: Int) -> String

    public static func == (a: H264Encoder, b: H264Encoder) -> Bool { a.factory == b.factory }

    /// The element as it goes into a pipeline description.
    public func element(kbps: UInt, framerate: Int) -> String {
        "\(factory) name=encoder \(settings(kbps, framerate))"
    }

    public static let x264 = H264Encoder(factory: "x264enc", package: "gstreamer1.0-plugins-ugly") { kbps, fps in
        "tune=zerolatency speed-preset=ultrafast bitrate=\(kbps) key-int-max=\(fps)"
    }

    // Cisco's OpenH264 (gst-plugins-bad): constrained baseline, no B-frames by design.
    public static let openh264 = H264Encoder(factory: "openh264enc", package: "gstreamer1.0-plugins-bad") { kbps, fps in
        "bitrate=\(kbps * 1000) gop-size=\(fps) complexity=low rate-control=bitrate usage-type=camera"
    }

    public static let known: [H264Encoder] = [x264, openh264]

    /// The encoder to use: `requested` ("auto" or a factory name) among those for which
    /// `isInstalled` holds.
    public static func choose(_ requested: String, isInstalled: (String) -> Bool) throws -> H264Encoder {
        let candidates = requested == "auto" ? known : known.filter { $0.factory == requested }
        guard let found = candidates.first(where: { isInstalled($0.factory) }) else {
            throw RelayError.noH264Encoder(tried: candidates.map(\.factory))
        }
        return found
    }
}
