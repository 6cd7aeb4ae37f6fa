import Foundation
import XCTest
import StylizeEngine
import StylizeModels

/// Inputs with which the fuzzers (Fuzz/, scripts/fuzz.sh) once crashed a reader. Each file
/// in Fuzz/regressions/<target>/ is replayed the way its fuzz target feeds it; a reader may
/// reject it, with an error that names the file, but must never trap. The named tests
/// below pin the error each fix throws.
final class FuzzRegressionTests: XCTestCase {
    private static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/regressions")

    private func inputs(_ target: String) throws -> [(name: String, bytes: [UInt8])] {
        let dir = Self.regressions.appendingPathComponent(target)
        // A target nothing has been found for yet has no folder (git keeps no empty ones).
        guard FileManager.default.fileExists(atPath: dir.path) else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        return try names.map { ($0, [UInt8](try Data(contentsOf: dir.appendingPathComponent($0)))) }
    }

    /// Runs `body`; a thrown error must name `file`.
    private func rejectsNaming(_ file: String, _ what: String, _ body: () throws -> Void) {
        do { try body() } catch { XCTAssertTrue("\(error)".contains(file), "\(what): error does not name \(file): \(error)") }
    }

    func testSafeTensorsInputs() throws {
        for (name, bytes) in try inputs("safetensors") where !bytes.isEmpty {
            let body = Data(bytes.dropFirst())
            rejectsNaming(name, name) {
                if bytes[0] & 1 == 0 {
                    let file = try SafeTensorsFile(data: body, path: name)
                    for t in file.names { _ = try file.floats(t) }
                } else {
                    _ = try SafeTensorsWeightSource.parseShardIndex(body, file: name)
                }
            }
        }
    }

    func testConfigInputs() throws {
        for (name, bytes) in try inputs("config") where !bytes.isEmpty {
            let body = Data(bytes.dropFirst())
            rejectsNaming(name, name) {
                switch bytes[0] % 7 {
                case 5, 6: _ = try StylizeConfig(data: body, file: name, textEncoderDefaults: bytes[0] % 7 == 5 ? .stableDiffusionCLIP : ConditioningSpec())
                default:
                    let r = try ConfigReader(data: body, file: name)
                    switch bytes[0] % 7 {
                    case 0: _ = try UNet2DConditionConfig(r).timeEmbedDim
                    case 1: _ = try AutoencoderTinyConfig(r).downscale
                    case 2: _ = try CLIPTextConfig(r)
                    case 3: _ = try Qwen3TextConfig(r)
                    default: _ = try Qwen3VLConfig(r)
                    }
                }
            }
        }
    }

    func testTokenizerInputs() throws {
        for (name, bytes) in try inputs("tokenizer") {
            let split = bytes.firstIndex(of: 0) ?? bytes.count
            let text = split < bytes.count ? String(decoding: bytes[(split + 1)...], as: UTF8.self) : "a photo of a cat"
            rejectsNaming(name, name) {
                let tokenizer = try Tokenizer(tokenizerJSONData: Data(bytes[..<split]), file: name)
                let ids = tokenizer.encode(text)
                _ = tokenizer.encode(text, addSpecialTokens: false)
                _ = tokenizer.decode(ids)
                _ = tokenizer.decode(ids, skipSpecialTokens: true)
            }
        }
    }

    func testPNGInputs() throws {
        for (name, bytes) in try inputs("png") {
            XCTAssertThrowsError(try PNGCodec.decode(bytes), name)
        }
    }

    // MARK: - the fixes

    private func config(_ json: String, file: String = "config.json") throws -> ConfigReader {
        try ConfigReader(data: Data(json.utf8), file: file)
    }

    private func assertInvalid(_ key: String, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case let .invalidConfig(f, k, _)? = error as? ModelError else {
                return XCTFail("not an invalidConfig error: \(error)", file: file, line: line)
            }
            XCTAssertEqual(f, "config.json", file: file, line: line)
            XCTAssertEqual(k, key, file: file, line: line)
        }
    }

    /// An integral number no Int holds trapped in Int(_:) (found by the config target).
    func testAnIntegerOutOfRangeNamesItsKey() throws {
        assertInvalid("hidden_size") { _ = try CLIPTextConfig(self.config(#"{"hidden_size": 1e300}"#)) }
        assertInvalid("in_channels") { _ = try UNet2DConditionConfig(self.config(#"{"in_channels": -9.3e18}"#)) }
    }

    /// Zero heads divided by zero (found by the config target: Qwen3 num_key_value_heads,
    /// CLIP num_attention_heads, the vision tower's num_heads).
    func testZeroHeadsAreErrorsNotDivisionsByZero() throws {
        assertInvalid("num_attention_heads") { _ = try CLIPTextConfig(self.config(#"{"num_attention_heads": 0}"#)) }
        assertInvalid("num_key_value_heads") { _ = try Qwen3TextConfig(self.config(#"{"num_key_value_heads": 0}"#)) }
        assertInvalid("num_attention_heads") {
            _ = try Qwen3TextConfig(self.config(#"{"num_attention_heads": 0, "head_dim": null}"#))
        }
        assertInvalid("num_heads") { _ = try Qwen3VLVisionConfig(self.config(#"{"num_heads": 0}"#)) }
        assertInvalid("num_position_embeddings") { _ = try Qwen3VLVisionConfig(self.config(#"{"num_position_embeddings": -4}"#)) }
    }

    func testMropeSectionsThatOverflowAreErrors() throws {
        let json = #"{"head_dim": 128, "rope_parameters": {"mrope_section": [9223372036854775807, 9223372036854775807, 66]}}"#
        assertInvalid("mrope_section") { _ = try Qwen3TextConfig(self.config(json), family: .qwen3VLText) }
    }

    func testBlocklessModelsAreErrors() throws {
        assertInvalid("down_block_types") {
            _ = try UNet2DConditionConfig(self.config(#"{"down_block_types": [], "up_block_types": [], "block_out_channels": []}"#))
        }
        assertInvalid("block_out_channels") {
            _ = try UNet2DConditionConfig(self.config(
                #"{"down_block_types": ["DownBlock2D"], "up_block_types": ["UpBlock2D"], "block_out_channels": [4611686018427387904]}"#))
        }
        assertInvalid("num_encoder_blocks") {
            _ = try AutoencoderTinyConfig(self.config(#"{"num_encoder_blocks": [], "encoder_block_out_channels": []}"#))
        }
    }

    /// A padded length of 10¹² allocated it; a truncation length of Int.min overflowed.
    func testTokenizerPaddingAndTruncationLengthsAreBounded() throws {
        func load(_ extra: String) throws -> Tokenizer {
            let json = #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}, "#  + extra + "}"
            return try Tokenizer(tokenizerJSONData: Data(json.utf8), file: "tokenizer.json")
        }
        for (extra, key) in [(#""padding": {"strategy": {"Fixed": 1000000000000}}"#, "padding.strategy.Fixed"),
                             (#""padding": {"strategy": "BatchLongest", "pad_to_multiple_of": -3}"#, "padding.pad_to_multiple_of"),
                             (#""truncation": {"max_length": -9223372036854775808}"#, "truncation.max_length")] {
            XCTAssertThrowsError(try load(extra)) { error in
                guard case let .invalidConfig(file, k, _)? = error as? ModelError else { return XCTFail("\(error)") }
                XCTAssertEqual(file, "tokenizer.json")
                XCTAssertEqual(k, key)
            }
        }
        XCTAssertEqual(try load(#""padding": {"strategy": {"Fixed": 4}, "pad_id": 1}"#).encode("a"), [0, 1, 1, 1])
    }

    /// A 70-byte PNG whose header promises 31234×16386 RGBA made the decoder allocate 2 GB
    /// before zlib could say the data was short (found by the png target).
    func testAPNGHeaderLargerThanItsDataIsRejectedBeforeAllocating() throws {
        let bytes = [UInt8](try Data(contentsOf: Self.regressions.appendingPathComponent("png/oom-31234x16386-rgba-26-byte-idat")))
        XCTAssertThrowsError(try PNGCodec.decode(bytes)) { XCTAssertTrue("\($0)".contains("cannot hold a 31234×16386 image"), "\($0)") }
    }
}
