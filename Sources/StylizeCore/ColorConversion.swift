/// Raw video formats the element accepts (GStreamer names), and their conversion to and
/// from the engine's NHWC RGB float frames in [-1, 1]. Strides always come from the
/// caller (the mapped GstVideoFrame); nothing assumes width × bytes-per-pixel.
public enum PixelFormat: String, CaseIterable, Sendable {
    case rgb = "RGB", bgr = "BGR", rgba = "RGBA", bgra = "BGRA", rgbx = "RGBx", bgrx = "BGRx"
    case xrgb = "xRGB", xbgr = "xBGR", argb = "ARGB", abgr = "ABGR", i420 = "I420", nv12 = "NV12"

    public init?(gstName: String) { self.init(rawValue: gstName) }

    public var planeCount: Int {
        switch self {
        case .i420: return 3
        case .nv12: return 2
        default: return 1
        }
    }

    /// For packed RGB formats: bytes per pixel and the byte offsets of R, G, B (and alpha).
    var packedLayout: (bytes: Int, r: Int, g: Int, b: Int, a: Int?)? {
        switch self {
        case .rgb: return (3, 0, 1, 2, nil)
        case .bgr: return (3, 2, 1, 0, nil)
        case .rgba: return (4, 0, 1, 2, 3)
        case .bgra: return (4, 2, 1, 0, 3)
        case .rgbx: return (4, 0, 1, 2, nil)
        case .bgrx: return (4, 2, 1, 0, nil)
        case .xrgb: return (4, 1, 2, 3, nil)
        case .xbgr: return (4, 3, 2, 1, nil)
        case .argb: return (4, 1, 2, 3, 0)
        case .abgr: return (4, 3, 2, 1, 0)
        case .i420, .nv12: return nil
        }
    }

    /// The 4:2:0 formats need even sizes only for their chroma planes' rounding; odd
    /// sizes are handled with GStreamer's (w + 1) / 2 chroma size.
    public var isYUV: Bool { packedLayout == nil }
}

/// Y'CbCr ↔ R'G'B' coefficients. GStreamer's defaults: BT.601 below HD, BT.709 from HD,
/// limited ("studio") range unless the caps say otherwise.
public struct YUVColorimetry: Sendable, Equatable {
    public var kr: Float
    public var kb: Float
    public var fullRange: Bool

    public static let bt601 = YUVColorimetry(kr: 0.299, kb: 0.114, fullRange: false)
    public static let bt709 = YUVColorimetry(kr: 0.2126, kb: 0.0722, fullRange: false)
    public static let bt2020 = YUVColorimetry(kr: 0.2627, kb: 0.0593, fullRange: false)

    public init(kr: Float, kb: Float, fullRange: Bool) {
        self.kr = kr
        self.kb = kb
        self.fullRange = fullRange
    }

    /// GStreamer's default for a frame of this size when the caps give no colorimetry.
    public static func defaultFor(width: Int, height: Int) -> YUVColorimetry {
        width >= 1280 || height > 576 ? .bt709 : .bt601
    }
}

/// One mapped video frame: plane base pointers and strides in bytes.
public struct FramePlanes {
    public var format: PixelFormat
    public var width: Int
    public var height: Int
    public var data: [UnsafeMutablePointer<UInt8>]
    public var strides: [Int]

    public init(format: PixelFormat, width: Int, height: Int, data: [UnsafeMutablePointer<UInt8>], strides: [Int]) {
        precondition(data.count == format.planeCount && strides.count == format.planeCount,
                     "FramePlanes: \(format.rawValue) needs \(format.planeCount) planes")
        self.format = format
        self.width = width
        self.height = height
        self.data = data
        self.strides = strides
    }
}

public enum ColorConversion {
    /// Frame → RGB floats in [-1, 1], written as [height, width, 3] rows of `rowStride`
    /// floats (so a caller can place it inside a larger, padded tensor).
    public static func toRGB(_ f: FramePlanes, colorimetry: YUVColorimetry? = nil,
                             into out: UnsafeMutablePointer<Float>, rowStride: Int) {
        let (w, h) = (f.width, f.height)
        if let l = f.format.packedLayout {
            parallelRanges(h, minPerThread: 16) { rows in
                for y in rows {
                    let src = f.data[0] + y * f.strides[0]
                    let dst = out + y * rowStride
                    for x in 0..<w {
                        let p = src + x * l.bytes
                        dst[3 * x] = Float(p[l.r]) * (2 / 255) - 1
                        dst[3 * x + 1] = Float(p[l.g]) * (2 / 255) - 1
                        dst[3 * x + 2] = Float(p[l.b]) * (2 / 255) - 1
                    }
                }
            }
            return
        }
        let c = colorimetry ?? .defaultFor(width: w, height: h)
        let yScale: Float = 1 / (c.fullRange ? 255 : 219)
        let yOffset: Float = c.fullRange ? 0 : 16
        let cScale: Float = 1 / (c.fullRange ? 255 : 224)
        let kg = 1 - c.kr - c.kb
        parallelRanges(h, minPerThread: 16) { rows in
            for y in rows {
                let yRow = f.data[0] + y * f.strides[0]
                let dst = out + y * rowStride
                for x in 0..<w {
                    let (u8, v8): (UInt8, UInt8)
                    if f.format == .i420 {
                        u8 = (f.data[1] + (y / 2) * f.strides[1])[x / 2]
                        v8 = (f.data[2] + (y / 2) * f.strides[2])[x / 2]
                    } else {
                        let uv = f.data[1] + (y / 2) * f.strides[1] + (x / 2) * 2
                        (u8, v8) = (uv[0], uv[1])
                    }
                    let luma: Float = (Float(yRow[x]) - yOffset) * yScale
                    let cb: Float = (Float(u8) - 128) * cScale
                    let cr: Float = (Float(v8) - 128) * cScale
                    let r: Float = luma + 2 * (1 - c.kr) * cr
                    let b: Float = luma + 2 * (1 - c.kb) * cb
                    let g: Float = (luma - c.kr * r - c.kb * b) / kg
                    dst[3 * x] = min(1, max(-1, 2 * r - 1))
                    dst[3 * x + 1] = min(1, max(-1, 2 * g - 1))
                    dst[3 * x + 2] = min(1, max(-1, 2 * b - 1))
                }
            }
        }
    }

    /// RGB floats in [-1, 1] ([height, width, 3] rows of `rowStride` floats) → frame.
    /// Alpha (ARGB, RGBA, …) is written opaque; padding bytes (RGBx, …) are left alone.
    public static func fromRGB(_ src: UnsafePointer<Float>, rowStride: Int, into f: FramePlanes,
                               colorimetry: YUVColorimetry? = nil) {
        let (w, h) = (f.width, f.height)
        @inline(__always) func byte(_ v: Float) -> UInt8 { UInt8(min(255, max(0, (v + 1) * 127.5 + 0.5))) }
        if let l = f.format.packedLayout {
            parallelRanges(h, minPerThread: 16) { rows in
                for y in rows {
                    let s = src + y * rowStride
                    let dst = f.data[0] + y * f.strides[0]
                    for x in 0..<w {
                        let p = dst + x * l.bytes
                        p[l.r] = byte(s[3 * x])
                        p[l.g] = byte(s[3 * x + 1])
                        p[l.b] = byte(s[3 * x + 2])
                        if let a = l.a { p[a] = 255 }
                    }
                }
            }
            return
        }
        let c = colorimetry ?? .defaultFor(width: w, height: h)
        let yRange: Float = c.fullRange ? 255 : 219
        let yOffset: Float = c.fullRange ? 0 : 16
        let cRange: Float = c.fullRange ? 255 : 224
        let kg = 1 - c.kr - c.kb
        @inline(__always) func clampByte(_ v: Float) -> UInt8 { UInt8(min(255, max(0, v + 0.5))) }
        @inline(__always) func rgb(_ x: Int, _ y: Int) -> (Float, Float, Float) {
            let p = src + y * rowStride + 3 * x
            return ((p[0] + 1) / 2, (p[1] + 1) / 2, (p[2] + 1) / 2)
        }
        parallelRanges(h, minPerThread: 16) { rows in
            for y in rows {
                let yRow = f.data[0] + y * f.strides[0]
                for x in 0..<w {
                    let (r, g, b) = rgb(x, y)
                    let luma: Float = c.kr * r + kg * g + c.kb * b
                    yRow[x] = clampByte(luma * yRange + yOffset)
                }
            }
        }
        // Chroma from the 2×2 block average (edge blocks use the pixels that exist).
        let (cw, ch) = ((w + 1) / 2, (h + 1) / 2)
        parallelRanges(ch, minPerThread: 8) { rows in
            for cy in rows {
                for cx in 0..<cw {
                    var (r, g, b, n): (Float, Float, Float, Float) = (0, 0, 0, 0)
                    for dy in 0..<2 where 2 * cy + dy < h {
                        for dx in 0..<2 where 2 * cx + dx < w {
                            let (pr, pg, pb) = rgb(2 * cx + dx, 2 * cy + dy)
                            r += pr
                            g += pg
                            b += pb
                            n += 1
                        }
                    }
                    (r, g, b) = (r / n, g / n, b / n)
                    let luma: Float = c.kr * r + kg * g + c.kb * b
                    let cb: Float = (b - luma) / (2 * (1 - c.kb))
                    let cr: Float = (r - luma) / (2 * (1 - c.kr))
                    let (u8, v8) = (clampByte(cb * cRange + 128), clampByte(cr * cRange + 128))
                    if f.format == .i420 {
                        (f.data[1] + cy * f.strides[1])[cx] = u8
                        (f.data[2] + cy * f.strides[2])[cx] = v8
                    } else {
                        let uv = f.data[1] + cy * f.strides[1] + 2 * cx
                        uv[0] = u8
                        uv[1] = v8
                    }
                }
            }
        }
    }
}
