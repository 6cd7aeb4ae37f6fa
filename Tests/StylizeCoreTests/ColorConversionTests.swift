import XCTest
@testable import StylizeCore

final class ColorConversionTests: XCTestCase {
    /// Owns plane memory for a frame with a given stride padding.
    final class Frame {
        var planes: [[UInt8]]
        let format: PixelFormat, width: Int, height: Int
        let strides: [Int]

        init(_ format: PixelFormat, _ width: Int, _ height: Int, padding: Int = 0) {
            self.format = format
            self.width = width
            self.height = height
            let (cw, ch) = ((width + 1) / 2, (height + 1) / 2)
            switch format {
            case .i420: strides = [width + padding, cw + padding, cw + padding]
            case .nv12: strides = [width + padding, 2 * cw + padding]
            default: strides = [width * format.packedLayout!.bytes + padding]
            }
            let rows = format == .i420 ? [height, ch, ch] : format == .nv12 ? [height, ch] : [height]
            planes = zip(strides, rows).map { [UInt8](repeating: 0xAB, count: $0 * $1) }
        }

        func withPlanes<R>(_ body: (FramePlanes) -> R) -> R {
            var pointers: [UnsafeMutablePointer<UInt8>] = []
            for i in planes.indices { pointers.append(planes[i].withUnsafeMutableBufferPointer { $0.baseAddress! }) }
            return body(FramePlanes(format: format, width: width, height: height, data: pointers, strides: strides))
        }

        func toRGB(colorimetry: YUVColorimetry? = nil) -> [Float] {
            var out = [Float](repeating: 0, count: width * height * 3)
            withPlanes { f in out.withUnsafeMutableBufferPointer { ColorConversion.toRGB(f, colorimetry: colorimetry, into: $0.baseAddress!, rowStride: width * 3) } }
            return out
        }

        func fromRGB(_ rgb: [Float], colorimetry: YUVColorimetry? = nil) {
            withPlanes { f in rgb.withUnsafeBufferPointer { ColorConversion.fromRGB($0.baseAddress!, rowStride: width * 3, into: f, colorimetry: colorimetry) } }
        }
    }

    func testPackedFormatsPlaceChannelsWhereGStreamerDoes() {
        // (format, bytes of one pixel with R=10, G=20, B=30, A=40 / x=40)
        let cases: [(PixelFormat, [UInt8])] = [
            (.rgb, [10, 20, 30]), (.bgr, [30, 20, 10]), (.rgba, [10, 20, 30, 40]), (.bgra, [30, 20, 10, 40]),
            (.rgbx, [10, 20, 30, 40]), (.bgrx, [30, 20, 10, 40]), (.xrgb, [40, 10, 20, 30]), (.xbgr, [40, 30, 20, 10]),
            (.argb, [40, 10, 20, 30]), (.abgr, [40, 30, 20, 10]),
        ]
        for (format, pixel) in cases {
            let f = Frame(format, 1, 1)
            f.planes[0] = pixel
            let rgb = f.toRGB()
            XCTAssertEqual(rgb.map { Int((($0 + 1) * 127.5).rounded()) }, [10, 20, 30], format.rawValue)
        }
    }

    func testPackedRoundTripIsExactAndHonoursStrides() {
        for format in PixelFormat.allCases where !format.isYUV {
            let (w, h) = (7, 5)
            let packed = Frame(format, w, h), padded = Frame(format, w, h, padding: 13)
            var rng: UInt64 = 42
            for y in 0..<h { for x in 0..<(w * format.packedLayout!.bytes) {
                rng = rng &* 6364136223846793005 &+ 1
                let v = UInt8(truncatingIfNeeded: rng >> 33)
                packed.planes[0][y * packed.strides[0] + x] = v
                padded.planes[0][y * padded.strides[0] + x] = v
            } }
            let rgb = packed.toRGB()
            XCTAssertEqual(rgb, padded.toRGB(), "\(format.rawValue): stride changed the result")
            let out = Frame(format, w, h, padding: 13)
            out.fromRGB(rgb)
            let l = format.packedLayout!
            for y in 0..<h { for x in 0..<w { for ch in [l.r, l.g, l.b] {
                XCTAssertEqual(out.planes[0][y * out.strides[0] + x * l.bytes + ch], packed.planes[0][y * packed.strides[0] + x * l.bytes + ch])
            } } }
            // Padding bytes past the row are never written.
            XCTAssertEqual(out.planes[0][out.strides[0] - 1], 0xAB, format.rawValue)
        }
    }

    func testBT601LimitedRangeMatchesTheStandardValues() {
        // Pure red in BT.601 studio range is Y=81, Cb=90, Cr=240; white is 235/128/128.
        for format in [PixelFormat.i420, .nv12] {
            let f = Frame(format, 4, 2)
            var rgb = [Float](repeating: -1, count: 4 * 2 * 3)
            for p in 0..<4 { rgb[3 * p] = 1 }                          // top row red
            for p in 4..<8 { rgb[3 * p] = 1; rgb[3 * p + 1] = 1; rgb[3 * p + 2] = 1 }  // bottom row white
            f.fromRGB(rgb, colorimetry: .bt601)
            XCTAssertEqual(Array(f.planes[0][0..<4]), [81, 81, 81, 81])
            XCTAssertEqual(Array(f.planes[0][f.strides[0]..<(f.strides[0] + 4)]), [235, 235, 235, 235])
            let back = Frame(format, 1, 1)
            back.planes[0] = [81]
            if format == .i420 { back.planes[1] = [90]; back.planes[2] = [240] } else { back.planes[1] = [90, 240] }
            let red = back.toRGB(colorimetry: .bt601).map { ($0 + 1) * 127.5 }
            XCTAssertEqual(red[0], 255, accuracy: 2)
            XCTAssertEqual(red[1], 0, accuracy: 2)
            XCTAssertEqual(red[2], 0, accuracy: 2)
        }
    }

    func testYUVRoundTripOfSmoothImagesStaysWithinThreeLevels() {
        for format in [PixelFormat.i420, .nv12] {
            for (w, h, pad) in [(16, 8, 0), (9, 7, 5)] {  // odd sizes use (n + 1) / 2 chroma
                var rgb = [Float](repeating: 0, count: w * h * 3)
                for y in 0..<h { for x in 0..<w {
                    // ≈ 1.5 levels per pixel: what 4:2:0 chroma can carry without visible loss.
                    rgb[(y * w + x) * 3] = Float(x) * 0.012 - 0.1
                    rgb[(y * w + x) * 3 + 1] = Float(y) * 0.012 - 0.3
                    rgb[(y * w + x) * 3 + 2] = 0.2
                } }
                let f = Frame(format, w, h, padding: pad)
                f.fromRGB(rgb, colorimetry: .bt709)
                let back = f.toRGB(colorimetry: .bt709)
                let worst = zip(rgb, back).map { abs($0 - $1) * 127.5 }.max()!
                XCTAssertLessThan(worst, 3, "\(format.rawValue) \(w)×\(h)")
            }
        }
    }
}
