import Foundation
import StylizeModels
import XCTest

/// Malformed inputs must be thrown errors that name the file and the tensor or key,
/// never crashes.
final class LoadingErrorTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "stylize-errors-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A safetensors file assembled by hand: 8-byte length, header text, payload.
    private func rawFile(_ name: String, header: String, payload: Int, lengthOverride: UInt64? = nil) throws -> String {
        var data = Data()
        var length = (lengthOverride ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(Data(count: payload))
        let path = dir + "/" + name
        try data.write(to: URL(fileURLWithPath: path))
        return path
    }

    func testValidHandWrittenFileReadsBack() throws {
        let path = try rawFile("ok.safetensors",
                               header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}}"#,
                               payload: 8)
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(f.names, ["a"])
        XCTAssertEqual(try f.floats("a"), [0, 0])
        XCTAssertEqual(f.metadata["format"], "pt")
    }

    func testTruncatedFile() throws {
        let path = try rawFile("t.safetensors", header: #"{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}"#, payload: 40)
        assertThrows(try SafeTensorsFile(path: path), contains: [path, "truncated"])
    }

    func testHeaderLengthPastEndOfFile() throws {
        let path = try rawFile("h.safetensors", header: "{}", payload: 0, lengthOverride: 4096)
        assertThrows(try SafeTensorsFile(path: path), contains: [path, "past the end"])
        let tiny = dir + "/tiny.safetensors"
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: tiny))
        assertThrows(try SafeTensorsFile(path: tiny), contains: [tiny, "shorter than"])
        let huge = try rawFile("huge.safetensors", header: "{}", payload: 0, lengthOverride: 200_000_000)
        assertThrows(try SafeTensorsFile(path: huge), contains: [huge, "100 MB"])
    }

    func testDuplicateKey() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        let path = try rawFile("d.safetensors", header: header, payload: 8)
        assertThrows(try SafeTensorsFile(path: path), contains: [path, "duplicate", "'w'"])
    }

    func testInconsistentEntries() throws {
        let cases: [(String, Int, String)] = [
            (#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, "needs 12"),
            (#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, 8, "unsupported dtype Q4"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "gap"),
            (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, 8, "overlaps"),
            (#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, 12, "trailing bytes"),
            (#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, 4, "invalid shape"),
            (#"{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}"#, 4, "overflows"),
            (#"[1,2]"#, 0, "not a JSON object"),
            (#"{"w": nope}"#, 0, "not valid JSON"),
        ]
        for (i, c) in cases.enumerated() {
            let path = try rawFile("bad\(i).safetensors", header: c.0, payload: c.1)
            assertThrows(try SafeTensorsFile(path: path), contains: [path, c.2])
        }
    }

    func testHalfPrecisionDecodesExactly() throws {
        // F16: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal); BF16: 1.0, -0.5.
        var payload = Data()
        for h: UInt16 in [0x3C00, 0xC000, 0x7BFF, 0x0001] { withUnsafeBytes(of: h.littleEndian) { payload.append(contentsOf: $0) } }
        for b: UInt16 in [0x3F80, 0xBF00] { withUnsafeBytes(of: b.littleEndian) { payload.append(contentsOf: $0) } }
        let header = #"{"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}}"#
        var data = Data()
        var length = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8))
        data.append(payload)
        let path = dir + "/half.safetensors"
        try data.write(to: URL(fileURLWithPath: path))
        let f = try SafeTensorsFile(path: path)
        XCTAssertEqual(try f.floats("h"), [1, -2, 65504, Float(1.0 / 16_777_216.0)])
        XCTAssertEqual(try f.floats("b"), [1, -0.5])
    }

    /// Copies a fixture's U-Net folder so a test can damage it.
    private func copyFixture(_ name: String) throws -> String {
        let target = dir + "/" + name
        try FileManager.default.copyItem(atPath: Fixtures.path("unet", name), toPath: target)
        return target
    }

    private func rewriteWeights(_ folder: String, _ edit: (inout [SafeTensorsWriter.Item]) -> Void) throws {
        let path = folder + "/diffusion_pytorch_model.safetensors"
        let f = try SafeTensorsFile(path: path)
        var items = try f.names.map { SafeTensorsWriter.Item(name: $0, shape: f.entries[$0]!.shape, values: .f32(try f.floats($0))) }
        edit(&items)
        try SafeTensorsWriter(items: items).write(to: path)
    }

    func testMissingTensorIsNamed() throws {
        let folder = try copyFixture("sd15_tiny")
        try rewriteWeights(folder) { $0.removeAll { $0.name == "mid_block.attentions.0.proj_out.weight" } }
        assertThrows(try UNet2DConditionModel(directory: folder),
                     contains: ["diffusion_pytorch_model.safetensors", "'mid_block.attentions.0.proj_out.weight'", "missing"])
    }

    func testShapeMismatchIsNamed() throws {
        let folder = try copyFixture("sd15_tiny")
        try rewriteWeights(folder) { items in
            let i = items.firstIndex { $0.name == "conv_in.weight" }!
            let n = items[i].shape.reduce(1, *)
            items[i] = .init(name: "conv_in.weight", shape: [n], values: items[i].values)
        }
        assertThrows(try UNet2DConditionModel(directory: folder), contains: ["'conv_in.weight'", "has shape", "expected [8, 4, 3, 3]"])
    }

    func testUnexpectedTensorIsNamed() throws {
        let folder = try copyFixture("sd15_tiny")
        try rewriteWeights(folder) { $0.append(.init(name: "extra.adapter.weight", shape: [2], values: .f32([1, 2]))) }
        assertThrows(try UNet2DConditionModel(directory: folder), contains: ["'extra.adapter.weight'", "not used"])
    }

    func testUnknownBlockTypeAndOptionsAreNamed() throws {
        let folder = try copyFixture("sd15_tiny")
        let configPath = folder + "/config.json"
        let original = try String(contentsOfFile: configPath, encoding: .utf8)
        let edits: [(String, String, [String])] = [
            ("\"DownBlock2D\"", "\"SimpleCrossAttnDownBlock2D\"", ["down_block_types", "SimpleCrossAttnDownBlock2D", "not supported"]),
            ("\"UpBlock2D\"", "\"AttnUpBlock2D\"", ["up_block_types", "AttnUpBlock2D"]),
            ("\"act_fn\": \"silu\"", "\"act_fn\": \"mish3\"", ["act_fn", "mish3"]),
            ("\"resnet_time_scale_shift\": \"default\"", "\"resnet_time_scale_shift\": \"scale_shift\"", ["resnet_time_scale_shift"]),
            ("\"class_embed_type\": null", "\"class_embed_type\": \"timestep\"", ["class_embed_type", "timestep"]),
            ("\"layers_per_block\": 2", "\"layers_per_block\": \"two\"", ["layers_per_block", "integer"]),
        ]
        for (from, to, fragments) in edits {
            XCTAssertTrue(original.contains(from), "fixture config lacks \(from)")
            try original.replacingOccurrences(of: from, with: to).write(toFile: configPath, atomically: true, encoding: .utf8)
            assertThrows(try UNet2DConditionModel(directory: folder), contains: [configPath] + fragments)
        }
    }

    func testTextEncoderConfigErrorsAreNamed() throws {
        let folder = dir + "/enc"
        try FileManager.default.copyItem(atPath: Fixtures.path("text", "qwen3_text_b"), toPath: folder)
        let configPath = folder + "/config.json"
        let original = try String(contentsOfFile: configPath, encoding: .utf8)
        // An architecture we do not implement.
        try original.replacingOccurrences(of: "\"model_type\": \"qwen3\"", with: "\"model_type\": \"llama4\"")
            .replacingOccurrences(of: "\"Qwen3Model\"", with: "\"Llama4Model\"")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        assertThrows(try TextEncoder.load(directory: folder), contains: [configPath, "model_type", "llama4"])
        // A config that does not match the weights names the tensor and both shapes.
        try original.replacingOccurrences(of: "\"intermediate_size\": 80", with: "\"intermediate_size\": 96")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        assertThrows(try TextEncoder.load(directory: folder), contains: ["'layers.0.mlp.gate_proj.weight'", "[80, 48]", "[96, 48]"])
        // GQA that does not divide.
        try original.replacingOccurrences(of: "\"num_key_value_heads\": 1", with: "\"num_key_value_heads\": 4")
            .write(toFile: configPath, atomically: true, encoding: .utf8)
        assertThrows(try TextEncoder.load(directory: folder), contains: [configPath, "num_key_value_heads"])
    }

    func testMissingFilesAreNamed() throws {
        assertThrows(try UNet2DConditionModel(directory: dir + "/nowhere"), contains: ["nowhere/config.json", "not found"])
        let folder = dir + "/noweights"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("vae", "taesd_narrow16", "config.json"), toPath: folder + "/config.json")
        assertThrows(try AutoencoderTiny(directory: folder), contains: [folder, "safetensors"])
    }

    func testShardedCheckpointLoadsThroughItsIndex() throws {
        let source = Fixtures.path("vae", "taesd_narrow16")
        let folder = dir + "/sharded"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: source + "/config.json", toPath: folder + "/config.json")
        let f = try SafeTensorsFile(path: source + "/diffusion_pytorch_model.safetensors")
        var shards = [SafeTensorsWriter(), SafeTensorsWriter()]
        var map: [String: String] = [:]
        for (i, name) in f.names.enumerated() {
            shards[i % 2].items.append(.init(name: name, shape: f.entries[name]!.shape, values: .f32(try f.floats(name))))
            map[name] = "diffusion_pytorch_model-0000\(i % 2 + 1)-of-00002.safetensors"
        }
        for (i, shard) in shards.enumerated() {
            try shard.write(to: folder + "/diffusion_pytorch_model-0000\(i + 1)-of-00002.safetensors")
        }
        let index = try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 0], "weight_map": map])
        try index.write(to: URL(fileURLWithPath: folder + "/diffusion_pytorch_model.safetensors.index.json"))

        let vae = try AutoencoderTiny(directory: folder)
        let input = try SafeTensorsFile(path: source + "/input.safetensors")
        let output = try SafeTensorsFile(path: source + "/output.safetensors")
        let image = try vae.decode(Tensor.fromNCHW(Fixtures.tensor(input, "latent"))).toNCHW()
        assertParity(image, try Fixtures.tensor(output, "image"), "sharded taesd_narrow16 decode")

        // An index naming a tensor its shard lacks is an error naming both.
        var broken = map
        broken["decoder.layers.99.weight"] = "diffusion_pytorch_model-00001-of-00002.safetensors"
        try JSONSerialization.data(withJSONObject: ["weight_map": broken])
            .write(to: URL(fileURLWithPath: folder + "/diffusion_pytorch_model.safetensors.index.json"))
        assertThrows(try AutoencoderTiny(directory: folder),
                     contains: ["diffusion_pytorch_model-00001-of-00002.safetensors", "'decoder.layers.99.weight'"])
    }
}
