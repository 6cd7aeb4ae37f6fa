import Foundation
import XCTest
@testable import StylizeEngine
import StylizeModels
import StylizeTestSupport

final class PNGCodecTests: XCTestCase {
    /// A PNG written by PIL decodes to exactly the pixels PIL was given.
    func testDecodesPILOutputExactly() throws {
        let dir = TinyModelFolder.fixtures + "/text/qwen3_vl"
        let png = try PNGCodec.read(path: dir + "/image.png")
        let raw = try SafeTensorsFile(path: dir + "/image_rgb.safetensors")
        XCTAssertEqual([png.height, png.width, 3], raw.entries["image"]!.shape)
        XCTAssertEqual(png.pixels, try raw.floats("image").map { UInt8($0) })
    }

    func testRoundTripAndErrors() throws {
        var rng = SplitMix64(seed: 5)
        let image = RGBImage(width: 13, height: 7, pixels: (0..<(13 * 7 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        let back = try PNGCodec.decode(PNGCodec.encode(image))
        XCTAssertEqual(back.pixels, image.pixels)
        XCTAssertEqual(back.width, 13)
        XCTAssertThrowsError(try PNGCodec.decode([1, 2, 3])) { XCTAssertTrue("\($0)".contains("not a PNG")) }
        var truncated = try PNGCodec.encode(image)
        truncated.removeLast(30)
        XCTAssertThrowsError(try PNGCodec.decode(truncated))
        XCTAssertThrowsError(try PNGCodec.read(path: "/nonexistent.png")) { XCTAssertTrue("\($0)".contains("/nonexistent.png")) }
    }

    func testTensorConversionRoundTrips() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 128, 255, 1, 2, 3])
        XCTAssertEqual(RGBImage(tensor: image.tensor).pixels, image.pixels)
    }
}
