import Foundation
import StylizeModels
import XCTest

final class AutoencoderTinyParityTests: XCTestCase {
    /// encode(image).latents and decode(latent).sample against diffusers for every fixture.
    func testAllAutoencoderFixturesMatchDiffusers() throws {
        let cases = Fixtures.cases("vae")
        XCTAssertGreaterThanOrEqual(cases.count, 3)
        XCTAssertTrue(cases.contains("taesd_stock_fp16"), "the stock TAESD config must be covered")
        for name in cases {
            let dir = Fixtures.path("vae", name)
            let vae = try AutoencoderTiny(directory: dir)
            let input = try SafeTensorsFile(path: dir + "/input.safetensors")
            let output = try SafeTensorsFile(path: dir + "/output.safetensors")
            let latent = try vae.encode(Tensor.fromNCHW(Fixtures.tensor(input, "image"))).toNCHW()
            assertParity(latent, try Fixtures.tensor(output, "latent"), "vae/\(name) encode")
            let image = try vae.decode(Tensor.fromNCHW(Fixtures.tensor(input, "latent"))).toNCHW()
            assertParity(image, try Fixtures.tensor(output, "image"), "vae/\(name) decode")
        }
    }

    func testScaleAndUnscaleLatentsAreInverseInsideTheClampRange() throws {
        let dir = Fixtures.path("vae", "taesd_lat16_blocks2")
        let vae = try AutoencoderTiny(directory: dir)
        XCTAssertEqual(vae.config.latentMagnitude, 2)
        XCTAssertEqual(vae.config.latentShift, 0.25)
        let raw = Tensor(shape: [1, 1, 1, 4], data: [-1, 0, 1.5, 100])
        let scaled = vae.scaleLatents(raw)
        // diffusers: x / (2·m) + shift, clamped to [0, 1].
        XCTAssertEqual(scaled.data, [0, 0.25, 0.625, 1])
        XCTAssertEqual(Array(vae.unscaleLatents(scaled).data.prefix(3)), [-1, 0, 1.5])
    }
}
