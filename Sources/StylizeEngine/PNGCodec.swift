import CZlib
import Foundation
import StylizeModels

/// Just enough PNG for stills in and out of the engine (stylize-tool, contact sheets):
/// 8-bit greyscale, grey+alpha, RGB, RGBA and palette images, non-interlaced, every
/// filter type; writes 8-bit RGB. zlib does the deflate.
public enum PNGCodec {
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    public static func read(path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Error(description: "\(path): cannot read the file")
        }
        do { return try decode([UInt8](data)) } catch let e as Error {
            throw Error(description: "\(path): \(e.description)")
        }
    }

    public static func write(_ image: RGBImage, path: String) throws {
        let data = try encode(image)
        guard FileManager.default.createFile(atPath: path, contents: Data(data)) else {
            throw Error(description: "\(path): cannot write the file")
        }
    }

    public static func decode(_ bytes: [UInt8]) throws -> RGBImage {
        let signature: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        guard bytes.count > 8, Array(bytes[0..<8]) == signature else { throw Error(description: "not a PNG file") }
        var pos = 8
        var width = 0, height = 0, colorType = 0, depth = 0, interlace = 0
        var palette: [UInt8] = []
        var idat: [UInt8] = []
        func u32(_ p: Int) -> Int { Int(bytes[p]) << 24 | Int(bytes[p + 1]) << 16 | Int(bytes[p + 2]) << 8 | Int(bytes[p + 3]) }
        while pos + 8 <= bytes.count {
            let length = u32(pos)
            let type = String(decoding: bytes[(pos + 4)..<(pos + 8)], as: UTF8.self)
            guard pos + 12 + length <= bytes.count else { throw Error(description: "truncated \(type) chunk") }
            let body = Array(bytes[(pos + 8)..<(pos + 8 + length)])
            switch type {
            case "IHDR":
                guard length >= 13 else { throw Error(description: "short IHDR") }
                width = u32(pos + 8)
                height = u32(pos + 12)
                depth = Int(body[8])
                colorType = Int(body[9])
                interlace = Int(body[12])
            case "PLTE": palette = body
            case "IDAT": idat += body
            case "IEND": pos = bytes.count
            default: break
            }
            pos += 12 + length
        }
        guard width > 0, height > 0, width <= 1 << 15, height <= 1 << 15 else { throw Error(description: "bad size \(width)×\(height)") }
        guard depth == 8, interlace == 0 else {
            throw Error(description: "only 8-bit non-interlaced PNGs are supported (depth \(depth), interlace \(interlace))")
        }
        let channels: Int
        switch colorType {
        case 0: channels = 1
        case 2: channels = 3
        case 3: channels = 1
        case 4: channels = 2
        case 6: channels = 4
        default: throw Error(description: "unsupported colour type \(colorType)")
        }
        let stride = width * channels
        // Deflate cannot expand data more than 1032:1: a header that promises more than the
        // IDAT bytes can hold is corrupt, and is rejected before the buffers (gigabytes for
        // a 32768² RGBA header on a 70-byte file) are allocated.
        guard (stride + 1) * height <= idat.count * 1032 + 1024 else {
            throw Error(description: "\(idat.count) bytes of image data cannot hold a \(width)×\(height) image")
        }
        var raw = [UInt8](repeating: 0, count: (stride + 1) * height)
        var destLen = uLongf(raw.count)
        let status = raw.withUnsafeMutableBufferPointer { out in
            idat.withUnsafeBufferPointer { src in uncompress(out.baseAddress!, &destLen, src.baseAddress!, uLong(idat.count)) }
        }
        guard status == Z_OK, Int(destLen) == raw.count else { throw Error(description: "corrupt image data (zlib \(status))") }
        // Undo the per-row filters.
        var pixels = [UInt8](repeating: 0, count: stride * height)
        for y in 0..<height {
            let filter = raw[y * (stride + 1)]
            for x in 0..<stride {
                let r = raw[y * (stride + 1) + 1 + x]
                let a = x >= channels ? Int(pixels[y * stride + x - channels]) : 0
                let b = y > 0 ? Int(pixels[(y - 1) * stride + x]) : 0
                let c = (x >= channels && y > 0) ? Int(pixels[(y - 1) * stride + x - channels]) : 0
                let predicted: Int
                switch filter {
                case 0: predicted = 0
                case 1: predicted = a
                case 2: predicted = b
                case 3: predicted = (a + b) / 2
                case 4:
                    let p = a + b - c
                    let (pa, pb, pc) = (abs(p - a), abs(p - b), abs(p - c))
                    predicted = pa <= pb && pa <= pc ? a : (pb <= pc ? b : c)
                default: throw Error(description: "bad filter type \(filter) in row \(y)")
                }
                pixels[y * stride + x] = UInt8(truncatingIfNeeded: Int(r) + predicted)
            }
        }
        var rgb = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            switch colorType {
            case 0, 4:
                let g = pixels[i * channels]
                (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = (g, g, g)
            case 3:
                let idx = Int(pixels[i]) * 3
                guard idx + 2 < palette.count else { throw Error(description: "palette index out of range") }
                (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = (palette[idx], palette[idx + 1], palette[idx + 2])
            default:
                (rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]) = (pixels[i * channels], pixels[i * channels + 1], pixels[i * channels + 2])
            }
        }
        return RGBImage(width: width, height: height, pixels: rgb)
    }

    public static func encode(_ image: RGBImage) throws -> [UInt8] {
        let stride = image.width * 3
        var raw = [UInt8](repeating: 0, count: (stride + 1) * image.height)
        for y in 0..<image.height {
            raw[y * (stride + 1)] = 0
            for x in 0..<stride { raw[y * (stride + 1) + 1 + x] = image.pixels[y * stride + x] }
        }
        var compressed = [UInt8](repeating: 0, count: Int(compressBound(uLong(raw.count))))
        var length = uLongf(compressed.count)
        let status = compressed.withUnsafeMutableBufferPointer { out in
            raw.withUnsafeBufferPointer { compress2(out.baseAddress!, &length, $0.baseAddress!, uLong(raw.count), 6) }
        }
        guard status == Z_OK else { throw Error(description: "zlib compression failed (\(status))") }
        compressed.removeLast(compressed.count - Int(length))
        var out: [UInt8] = [137, 80, 78, 71, 13, 10, 26, 10]
        func chunk(_ type: String, _ body: [UInt8]) {
            let typeBytes = Array(type.utf8)
            out += be32(body.count) + typeBytes + body
            let crc = (typeBytes + body).withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            out += be32(Int(crc))
        }
        chunk("IHDR", be32(image.width) + be32(image.height) + [8, 2, 0, 0, 0])
        chunk("IDAT", compressed)
        chunk("IEND", [])
        return out
    }

    private static func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
}

extension RGBImage {
    /// [1, H, W, 3] in [-1, 1].
    public var tensor: Tensor {
        Tensor(shape: [1, height, width, 3], data: pixels.map { Float($0) * (2 / 255) - 1 })
    }

    /// Frame `index` of an NHWC [-1, 1] batch.
    public init(tensor t: Tensor, index: Int = 0) {
        let per = t.h * t.w * 3
        let base = index * per
        self.init(width: t.w, height: t.h,
                  pixels: (0..<per).map { UInt8(min(255, max(0, (t.data[base + $0] + 1) * 127.5 + 0.5))) })
    }
}
