import Foundation
@testable import StylizeModels
import XCTest

/// One reference encoding from the fixtures (ids from the Python `tokenizers` library).
struct TokenizerCase: Decodable {
    let text: String
    let ids: [Int]
}

/// Parity with the `tokenizers` library on the committed fixtures
/// (Fixtures/tokenizers/README.md), plus the behaviours docs/ARCHITECTURE.md#tokenizers
/// pins down.
final class TokenizerTests: XCTestCase {
    static let clipDir = Fixtures.path("tokenizers", "clip")
    static let qwenDir = Fixtures.path("tokenizers", "qwen")

    // Loaded once for the whole class: the CLIP files are ~2.6 MB of JSON.
    static let clip = Result { try Tokenizer(directory: clipDir) }
    static let qwen = Result { try Tokenizer(directory: qwenDir) }

    static func cases(_ file: String) throws -> [TokenizerCase] {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        return try JSONDecoder().decode([TokenizerCase].self, from: data)
    }

    /// Fails once per tokenizer with the first few mismatching strings, expected vs actual.
    func assertParity(_ tokenizer: Tokenizer, _ cases: [TokenizerCase], _ label: String,
                      file: StaticString = #filePath, line: UInt = #line) {
        var failures: [String] = []
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                failures.append("  \(Self.show(c.text))\n    expected \(c.ids)\n    actual   \(ids)")
            }
        }
        print("\(label): \(cases.count - failures.count)/\(cases.count) strings match the tokenizers library")
        if !failures.isEmpty {
            XCTFail("\(label): \(failures.count) of \(cases.count) strings differ; first ones:\n"
                    + failures.prefix(5).joined(separator: "\n"), file: file, line: line)
        }
    }

    /// The text with its scalars spelled out, so whitespace and combining marks are visible.
    static func show(_ s: String) -> String {
        let scalars = s.unicodeScalars.map { c -> String in
            c.isASCII && c.value >= 0x20 && c.value < 0x7F ? String(c) : String(format: "\\u{%X}", c.value)
        }
        let joined = scalars.joined()
        return "\"" + (joined.count > 160 ? joined.prefix(160) + "…" : joined) + "\""
    }

    func testCLIPMatchesTokenizersLibraryFromTokenizerJSON() throws {
        let cases = try Self.cases(Self.clipDir + "/cases.json")
        XCTAssertGreaterThanOrEqual(cases.count, 500)
        assertParity(try Self.clip.get(), cases, "clip (tokenizer.json)")
    }

    /// The same cases through the vocab.json + merges.txt path (no tokenizer.json).
    func testCLIPMatchesTokenizersLibraryFromVocabAndMerges() throws {
        let dir = NSTemporaryDirectory() + "clip-files-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(atPath: Self.clipDir + "/" + f, toPath: dir + "/" + f)
        }
        let tokenizer = try Tokenizer(directory: dir)
        XCTAssertEqual(tokenizer.source, dir + "/vocab.json")
        assertParity(tokenizer, try Self.cases(Self.clipDir + "/cases.json"), "clip (vocab.json + merges.txt)")
        let reference = try Self.clip.get()
        XCTAssertEqual(tokenizer.vocabularySize, reference.vocabularySize)
        XCTAssertEqual(tokenizer.specialTokens.map(\.content), reference.specialTokens.map(\.content))
    }

    func testQwenMatchesTokenizersLibrary() throws {
        let cases = try Self.cases(Self.qwenDir + "/cases.json")
        XCTAssertGreaterThanOrEqual(cases.count, 500)
        assertParity(try Self.qwen.get(), cases, "qwen")
    }

    /// The CLIP check value in docs/ARCHITECTURE.md#tokenizers.
    func testCLIPReferenceVector() throws {
        let clip = try Self.clip.get()
        XCTAssertEqual(clip.encode("a photo of an astronaut riding a horse on mars"),
                       [49406, 320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496, 49407])
        XCTAssertEqual(clip.encode("a photo of an astronaut riding a horse on mars", addSpecialTokens: false),
                       [320, 1125, 539, 550, 18376, 6765, 320, 4558, 525, 7496])
        XCTAssertEqual(clip.tokenToId("<|startoftext|>"), 49406)
        XCTAssertEqual(clip.tokenToId("<|endoftext|>"), 49407)
        XCTAssertEqual(clip.idToToken(320), "a</w>")
        XCTAssertEqual(clip.vocabularySize, 49408)
    }

    /// Stable Diffusion's 77-token input: truncated with EOS kept last, padded with EOS.
    func testCLIPStableDiffusionPaddingAndTruncation() throws {
        struct SDCase: Decodable {
            let text: String
            let ids: [Int]
            let attention_mask: [Int]
            let untruncated_length: Int
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.clipDir + "/cases_sd.json"))
        let cases = try JSONDecoder().decode([SDCase].self, from: data)
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        XCTAssertTrue(cases.contains { $0.untruncated_length > 77 }, "fixtures should exercise truncation")
        let clip = try Self.clip.get()
        for c in cases {
            let padded = clip.encodePaddedWithMask(c.text, maxLength: 77, padId: 49407)
            XCTAssertEqual(padded.ids, c.ids, Self.show(c.text))
            XCTAssertEqual(padded.attentionMask, c.attention_mask, Self.show(c.text))
            XCTAssertEqual(padded.untruncatedLength, c.untruncated_length, Self.show(c.text))
            XCTAssertEqual(clip.encodePadded(c.text, padId: 49407), c.ids)
        }
        // SD 2.x pads with 0; the mask is unchanged.
        let sd2 = clip.encodePadded("a photo of a cat", maxLength: 77, padId: 0)
        XCTAssertEqual(sd2.count, 77)
        XCTAssertEqual(Array(sd2.prefix(7)), [49406, 320, 1125, 539, 320, 2368, 49407])
        XCTAssertTrue(sd2.dropFirst(7).allSatisfy { $0 == 0 })
    }

    /// Byte-level BPE is lossless: decode(encode(s)) gives s back, except where NFC changes
    /// the text, or an added token strips whitespace (lstrip/rstrip) or is decoded from its
    /// normalized form through the byte-level decoder ("café": the library decodes it to
    /// "caf\u{FFFD}" too, since "é" is itself a byte-level alphabet character).
    func testQwenDecodeRoundTrips() throws {
        let qwen = try Self.qwen.get()
        let lossy = qwen.addedTokens.filter { $0.lstrip || $0.rstrip || $0.normalized }.map(\.content)
        var checked = 0
        for c in try Self.cases(Self.qwenDir + "/cases.json") {
            let nfc = c.text.precomposedStringWithCanonicalMapping
            guard nfc.bytesEqual(c.text), !lossy.contains(where: { c.text.utf8Contains($0) }) else { continue }
            let decoded = qwen.decode(c.ids)
            XCTAssertTrue(decoded.bytesEqual(c.text), "\(Self.show(c.text)) decodes to \(Self.show(decoded))")
            checked += 1
        }
        XCTAssertGreaterThan(checked, 400)
        // Special tokens are kept by default and dropped on request.
        let ids = qwen.encode("<|im_start|>user\nhi<|im_end|>")
        XCTAssertEqual(qwen.decode(ids), "<|im_start|>user\nhi<|im_end|>")
        XCTAssertEqual(qwen.decode(ids, skipSpecialTokens: true), "user\nhi")
        XCTAssertEqual(qwen.decode(qwen.encode("café")), "caf\u{FFFD}")
    }

    /// Random text from many scripts, controls and whitespace (seeded): byte-level BPE must
    /// give it back unchanged, and every id must be in the vocabulary.
    func testRandomTextRoundTripsThroughByteLevelBPE() throws {
        let qwen = try Self.qwen.get(), clip = try Self.clip.get()
        var rng = SplitMix64(seed: 7)
        let ranges: [ClosedRange<UInt32>] = [0x00...0x7F, 0x80...0x24F, 0x300...0x36F, 0x370...0x3FF, 0x400...0x4FF,
                                             0x590...0x6FF, 0x900...0x97F, 0xE00...0xE7F, 0x1100...0x11FF, 0x2000...0x206F,
                                             0x3000...0x30FF, 0x4E00...0x4FFF, 0xAC00...0xAD00, 0xFE00...0xFFFD,
                                             0x1F300...0x1F6FF, 0xE0000...0xE007F, 0x10000...0x10FFFF]
        var checked = 0
        for _ in 0..<300 {
            var text = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next() % 40) {
                let r = ranges[Int(rng.next() % UInt64(ranges.count))]
                if let c = Unicode.Scalar(r.lowerBound + UInt32(rng.next() % UInt64(r.count))) { text.append(c) }
            }
            let s = String(text)
            let clipIds = clip.encode(s)
            XCTAssertTrue(clipIds.allSatisfy { clip.idToToken($0) != nil }, Self.show(s))
            let ids = qwen.encode(s)
            XCTAssertTrue(ids.allSatisfy { qwen.idToToken($0) != nil }, Self.show(s))
            guard s.precomposedStringWithCanonicalMapping.bytesEqual(s) else { continue }
            XCTAssertTrue(qwen.decode(ids).bytesEqual(s), Self.show(s))
            checked += 1
        }
        XCTAssertGreaterThan(checked, 100)
    }

    /// The conditioning side thread and the element may encode at the same time; the word
    /// cache is the only shared mutable state.
    func testConcurrentEncodingGivesTheSameIds() throws {
        let qwen = try Tokenizer(directory: Self.qwenDir)  // fresh, empty cache
        let cases = try Self.cases(Self.qwenDir + "/cases.json")
        let results = UnsafeMutableBufferPointer<Bool>.allocate(capacity: 4)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: 4) { worker in
            var ok = true
            for (i, c) in cases.enumerated() where i % 2 == worker % 2 || worker >= 2 {
                ok = ok && qwen.encode(c.text) == c.ids
            }
            results[worker] = ok
        }
        XCTAssertEqual(Array(results), [true, true, true, true])
    }

    func testCLIPDecode() throws {
        let clip = try Self.clip.get()
        // CLIP's tokenizer.json decoder is plain ByteLevel, so "</w>" stays in the text
        // (transformers' CLIPTokenizer post-processes it away; the library does not).
        XCTAssertEqual(clip.decode(clip.encode("a cat"), skipSpecialTokens: true), "a</w>cat</w>")
        XCTAssertEqual(clip.decode([49406, 320, 49407]), "<|startoftext|>a</w><|endoftext|>")
    }

    func testAddedAndSpecialTokenLists() throws {
        let qwen = try Self.qwen.get()
        XCTAssertEqual(qwen.vocabularySize, 3020)
        XCTAssertEqual(qwen.addedTokens.count, 20)
        XCTAssertEqual(qwen.specialTokens.count, 14)
        XCTAssertEqual(qwen.tokenToId("<|im_start|>"), 3001)
        XCTAssertEqual(qwen.idToToken(3019), "café")
        let xyzzy = try XCTUnwrap(qwen.addedTokens.first { $0.content == "xyzzy" })
        XCTAssertTrue(xyzzy.singleWord)
        XCTAssertFalse(xyzzy.special)
        XCTAssertNil(qwen.idToToken(99_999))
        XCTAssertEqual(qwen.decode([99_999, 64]), "a")  // unknown ids are skipped
    }

    func testQwenHandlesLongWordsQuickly() throws {
        let qwen = try Self.qwen.get()
        // 20k-scalar words would be slow with a quadratic merge loop; the heap keeps it fast.
        let word = String(repeating: "abcdefghij", count: 2_000)
        let start = Date()
        let ids = qwen.encode(word)
        XCTAssertLessThan(Date().timeIntervalSince(start), 2.0)
        XCTAssertEqual(qwen.decode(ids), word)
    }
}

extension String {
    /// Byte-exact substring test (String.contains works on Characters).
    func utf8Contains(_ needle: String) -> Bool {
        let h = Array(utf8), n = Array(needle.utf8)
        guard !n.isEmpty, n.count <= h.count else { return n.isEmpty }
        for i in 0...(h.count - n.count) where h[i] == n[0] && h[i..<(i + n.count)].elementsEqual(n) { return true }
        return false
    }
}

/// A tiny deterministic generator for test inputs.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
