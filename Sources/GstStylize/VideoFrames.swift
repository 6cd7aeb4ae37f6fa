import CGStreamer
import CShims
import Foundation
import StylizeCore

/// The negotiated video format, as the chain function needs it for every frame.
struct VideoFormat {
    static let maxPixels = 8192 * 8192
    var info: GstVideoInfo
    let format: PixelFormat
    let colorimetry: YUVColorimetry
    var width: Int { Int(info.width) }
    var height: Int { Int(info.height) }

    /// Frame duration from the caps' framerate; nil for variable / unknown rates.
    var frameDuration: GstClockTime? {
        guard info.fps_n > 0, info.fps_d > 0 else { return nil }
        return gst_util_uint64_scale_int(nanosecondsPerSecond, info.fps_d, info.fps_n)
    }

    /// nil when the caps are not video, or describe a format the element does not take.
    init?(caps: UnsafeMutablePointer<GstCaps>) {
        var info = GstVideoInfo()
        guard gst_video_info_from_caps(&info, caps).isTrue,
              let finfo = info.finfo,
              let name = gst_video_format_to_string(finfo.pointee.format),
              let format = PixelFormat(gstName: String(cString: name)),
              info.width > 0, info.height > 0
        else { return nil }
        self.info = info
        self.format = format
        self.colorimetry = VideoFormat.colorimetry(info, format: format)
        // Each held frame is width × height × 3 floats: refuse (at negotiation, as a
        // not-negotiated error) sizes beyond 8192 × 8192 rather than fail an allocation.
        if Int(info.width) * Int(info.height) > VideoFormat.maxPixels { return nil }
    }

    static func colorimetry(_ info: GstVideoInfo, format: PixelFormat) -> YUVColorimetry {
        let full = info.colorimetry.range == GST_VIDEO_COLOR_RANGE_0_255
        var kr = 0.0, kb = 0.0
        if format.isYUV, gst_video_color_matrix_get_Kr_Kb(info.colorimetry.matrix, &kr, &kb).isTrue {
            return YUVColorimetry(kr: Float(kr), kb: Float(kb), fullRange: full)
        }
        var c = YUVColorimetry.defaultFor(width: Int(info.width), height: Int(info.height))
        c.fullRange = full
        return c
    }
}

/// A mapped GstVideoFrame seen as the planes ColorConversion reads and writes. Strides
/// and plane pointers come from the mapped frame (so GstVideoMeta padding is honoured).
struct MappedFrame {
    private(set) var frame = GstVideoFrame()
    let planes: FramePlanes

    /// nil when the buffer cannot be mapped (too small for the caps, or not mappable).
    init?(buffer: UnsafeMutablePointer<GstBuffer>, format: VideoFormat, write: Bool) {
        var info = format.info
        let flags = write ? GstMapFlags(rawValue: GST_MAP_READ.rawValue | GST_MAP_WRITE.rawValue) : GST_MAP_READ
        guard gst_video_frame_map(&frame, &info, buffer, flags).isTrue else { return nil }
        let n = format.format.planeCount
        var data: [UnsafeMutablePointer<UInt8>] = []
        var strides: [Int] = []
        var valid = Int(frame.info.width) == format.width && Int(frame.info.height) == format.height
        withUnsafeBytes(of: frame.data) { raw in
            let pointers = raw.bindMemory(to: UnsafeMutableRawPointer?.self)
            for i in 0..<n {
                if let p = pointers[i] { data.append(p.assumingMemoryBound(to: UInt8.self)) } else { valid = false }
            }
        }
        withUnsafeBytes(of: frame.info.stride) { raw in
            let s = raw.bindMemory(to: Int32.self)
            for i in 0..<n {
                strides.append(Int(s[i]))
                if s[i] <= 0 { valid = false }
            }
        }
        // A GstVideoMeta from upstream is trusted by gst_video_frame_map as it is; check
        // that every row the conversion touches lies inside the buffer.
        if valid {
            let size = Int(clamping: gst_buffer_get_size(buffer))
            withUnsafeBytes(of: frame.info.offset) { raw in
                let offsets = raw.bindMemory(to: UInt.self).map { Int(clamping: $0) }
                for i in 0..<n {
                    let (rowBytes, rows) = format.format.planeExtent(i, width: format.width, height: format.height)
                    let (span, o1) = strides[i].multipliedReportingOverflow(by: rows - 1)
                    let (end, o2) = offsets[i].addingReportingOverflow(span &+ rowBytes)
                    if strides[i] < rowBytes || o1 || o2 || offsets[i] < 0 || end > size { valid = false }
                }
            }
        }
        guard valid, data.count == n, strides.count == n else {
            gst_video_frame_unmap(&frame)
            return nil
        }
        planes = FramePlanes(format: format.format, width: format.width, height: format.height,
                             data: data, strides: strides)
    }

    mutating func unmap() { gst_video_frame_unmap(&frame) }
}

extension PixelFormat {
    /// Bytes of one row and number of rows of plane `i` (what the conversion reads).
    func planeExtent(_ i: Int, width w: Int, height h: Int) -> (rowBytes: Int, rows: Int) {
        let (cw, ch) = ((w + 1) / 2, (h + 1) / 2)
        switch self {
        case .i420: return i == 0 ? (w, h) : (cw, ch)
        case .nv12: return i == 0 ? (w, h) : (2 * cw, ch)
        case .rgb, .bgr: return (3 * w, h)
        default: return (4 * w, h)
        }
    }
}
