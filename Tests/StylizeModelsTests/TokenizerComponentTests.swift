import Foundation
@testable import StylizeModels
import XCTest

/// The tokenizer.json components the two fixtures do not exercise, each checked against
/// the behaviour of the `tokenizers` library's Rust source (expected values from its unit
/// tests where it has them).
final class TokenizerComponentTests: XCTestCase {
    private func node(_ value: Any, _ path: String = "component") -> TokenizerJSON {
        TokenizerJSON(file: "test.json", path: path, value: value)
    }

    private func pieces(_ p: PreTokenizer, _ text: String, isFirst: Bool = true) -> [String] {
        p.preTokenize(PreToken(text: text, isFirst: isFirst)).map(\.text)
    }

    /// A tokenizer.json assembled from parts; `model` defaults to a tiny BPE.
    private func tokenizer(_ parts: [String: Any]) throws -> Tokenizer {
        var root: [String: Any] = ["version": "1.0", "model": ["type": "BPE", "vocab": ["a": 0], "merges": [String]()]]
        root.merge(parts) { $1 }
        return try Tokenizer(tokenizerJSONData: JSONSerialization.data(withJSONObject: root), file: "test.json")
    }

    // MARK: Regex dialect

    /// Oniguruma's `\s` includes U+000B and U+0085, `\w` every Number, `\h` is a hex digit.
    func testRegexShorthandsFollowOniguruma() throws {
        XCTAssertEqual(try TokenizerRegex(pattern: #"\s+"#).matches(in: "a\u{0B}\u{85}\u{3000}\u{2028}b"), [1..<10])
        XCTAssertEqual(try TokenizerRegex(pattern: #"\S+"#).matches(in: "a\u{0B}\u{85}b"), [0..<1, 4..<5])
        XCTAssertEqual(try TokenizerRegex(pattern: #"[^\s\p{L}]+"#).matches(in: "!\u{85}?\u{0B}x"), [0..<1, 3..<4])
        XCTAssertEqual(try TokenizerRegex(pattern: #"\w+"#).matches(in: "x²½_ y"), [0..<6, 7..<8])
        XCTAssertEqual(try TokenizerRegex(pattern: #"\W"#).matches(in: "a b"), [1..<2])
        XCTAssertEqual(try TokenizerRegex(pattern: #"\h+"#).matches(in: "fF9g"), [0..<3])
        // Escaped backslashes and other escapes are left alone.
        XCTAssertEqual(TokenizerRegex.oniguruma2ICU(#"\\s\.\p{N}"#), #"\\s\.\p{N}"#)
        XCTAssertEqual(try TokenizerRegex(pattern: #"\\s"#).matches(in: #"a\sb"#), [1..<3])
        // Byte offsets across multi-byte scalars and surrogate pairs (UTF-16 in ICU).
        XCTAssertEqual(try TokenizerRegex(pattern: #"\p{L}+"#).matches(in: "😀é😀ab"), [4..<6, 10..<12])
        // A String pattern is literal.
        XCTAssertEqual(try TokenizerRegex(pattern: ".", literal: true).matches(in: "a.b"), [1..<2])
    }

    // MARK: Normalizers

    func testUnicodeNormalizers() throws {
        XCTAssertTrue(try makeNormalizer(node(["type": "NFC"])).normalize("e\u{301}").bytesEqual("\u{E9}"))
        XCTAssertTrue(try makeNormalizer(node(["type": "NFD"])).normalize("\u{E9}").bytesEqual("e\u{301}"))
        XCTAssertTrue(try makeNormalizer(node(["type": "NFKC"])).normalize("\u{FB01}\u{B2}e\u{301}").bytesEqual("fi2\u{E9}"))
        XCTAssertTrue(try makeNormalizer(node(["type": "NFKD"])).normalize("\u{FB01}\u{E9}").bytesEqual("fie\u{301}"))
    }

    /// Rust's char::to_lowercase one scalar at a time (the fixture README's examples).
    func testLowercaseIsPerScalar() throws {
        let lower = try makeNormalizer(node(["type": "Lowercase"]))
        XCTAssertTrue(lower.normalize("ΣΑΣ").bytesEqual("σασ"))  // no final sigma
        XCTAssertTrue(lower.normalize("İ").bytesEqual("i\u{307}"))
        XCTAssertTrue(lower.normalize("ẞ ABC").bytesEqual("ß abc"))
    }

    func testStripReplacePrependAndSequence() throws {
        let strip = { (l: Bool, r: Bool) in try makeNormalizer(self.node(["type": "Strip", "strip_left": l, "strip_right": r])) }
        XCTAssertEqual(try strip(true, false).normalize(" \u{3000}a b \n"), "a b \n")
        XCTAssertEqual(try strip(false, true).normalize(" a b \u{85}"), " a b")
        XCTAssertEqual(try strip(true, true).normalize("  "), "")
        let replaceString = try makeNormalizer(node(["type": "Replace", "pattern": ["String": "."], "content": "!"]))
        XCTAssertEqual(replaceString.normalize("a.b.c"), "a!b!c")
        let replaceRegex = try makeNormalizer(node(["type": "Replace", "pattern": ["Regex": #"\s+"#], "content": " "]))
        XCTAssertEqual(replaceRegex.normalize("a\u{0B}\r\n b"), "a b")
        let prepend = try makeNormalizer(node(["type": "Prepend", "prepend": "▁"]))
        XCTAssertEqual(prepend.normalize(""), "")
        XCTAssertEqual(prepend.normalize("ab"), "▁ab")
        // Llama-style: Prepend then Replace(" " → "▁").
        let llama = try makeNormalizer(node(["type": "Sequence", "normalizers": [
            ["type": "Prepend", "prepend": "▁"],
            ["type": "Replace", "pattern": ["String": " "], "content": "▁"],
        ]]))
        XCTAssertEqual(llama.normalize("Hey friend"), "▁Hey▁friend")
    }

    // MARK: Pre-tokenizers

    /// NormalizedString::split's documented example, every behaviour.
    func testSplitBehaviours() throws {
        func split(_ behavior: String, invert: Bool = false) throws -> [String] {
            let p = try makePreTokenizer(node(["type": "Split", "pattern": ["String": "-"], "behavior": behavior, "invert": invert]))
            return pieces(p, "the-final--countdown")
        }
        XCTAssertEqual(try split("Removed"), ["the", "final", "countdown"])
        XCTAssertEqual(try split("Isolated"), ["the", "-", "final", "-", "-", "countdown"])
        XCTAssertEqual(try split("MergedWithPrevious"), ["the-", "final-", "-", "countdown"])
        XCTAssertEqual(try split("MergedWithNext"), ["the", "-final", "-", "-countdown"])
        XCTAssertEqual(try split("Contiguous"), ["the", "-", "final", "--", "countdown"])
        XCTAssertEqual(try split("Removed", invert: true), ["-", "-", "-"])
        XCTAssertEqual(try split("MergedWithPrevious", invert: true), ["the", "-final", "-", "-countdown"])
    }

    /// "\r\n" is one Swift Character but two scalars; splits must not merge them.
    func testSplitWorksOnScalarsNotCharacters() throws {
        let p = try makePreTokenizer(node(["type": "Split", "pattern": ["Regex": "\\n"], "behavior": "Isolated", "invert": false]))
        XCTAssertEqual(pieces(p, "a\r\nb"), ["a\r", "\n", "b"])
        let marks = try makePreTokenizer(node(["type": "Split", "pattern": ["Regex": "\\p{M}"], "behavior": "Removed", "invert": false]))
        XCTAssertEqual(pieces(marks, "e\u{301}x").map { Array($0.unicodeScalars) }, [["e"], ["x"]])
    }

    func testByteLevelPreTokenizer() throws {
        let withPrefix = try makePreTokenizer(node(["type": "ByteLevel", "add_prefix_space": true, "use_regex": true]))
        XCTAssertEqual(pieces(withPrefix, "Hello my friend, how is your day going?"),
                       ["ĠHello", "Ġmy", "Ġfriend", ",", "Ġhow", "Ġis", "Ġyour", "Ġday", "Ġgoing", "?"])
        XCTAssertEqual(pieces(withPrefix, " x"), ["Ġx"])  // no second space
        let noRegex = try makePreTokenizer(node(["type": "ByteLevel", "add_prefix_space": false, "use_regex": false]))
        XCTAssertEqual(pieces(noRegex, "a b\n\u{E9}"), ["aĠbĊÃ©"])
        // GPT-2's regex: trailing whitespace run keeps its last space for the next word.
        let gpt2 = try makePreTokenizer(node(["type": "ByteLevel", "add_prefix_space": false]))
        XCTAssertEqual(pieces(gpt2, "a   b"), ["a", "ĠĠ", "Ġb"])
    }

    func testWhitespaceAndWhitespaceSplit() throws {
        let ws = try makePreTokenizer(node(["type": "Whitespace"]))
        XCTAssertEqual(pieces(ws, "Hey man!"), ["Hey", "man", "!"])
        XCTAssertEqual(pieces(ws, "How are you doing?"), ["How", "are", "you", "doing", "?"])
        XCTAssertEqual(pieces(ws, "\n"), [])
        let wss = try makePreTokenizer(node(["type": "WhitespaceSplit"]))
        XCTAssertEqual(pieces(wss, "Hey man!\u{85}x"), ["Hey", "man!", "x"])
    }

    func testMetaspace() throws {
        let always = try makePreTokenizer(node(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true]))
        XCTAssertEqual(pieces(always, "Hey friend!"), ["▁Hey", "▁friend!"])
        XCTAssertEqual(pieces(always, "Hey   friend!"), ["▁Hey", "▁", "▁", "▁friend!"])
        let first = try makePreTokenizer(node(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": false]))
        XCTAssertEqual(pieces(first, "Hey my friend "), ["▁Hey▁my▁friend▁"])
        XCTAssertEqual(pieces(first, "how▁are you", isFirst: false), ["how▁are▁you"])
        let never = try makePreTokenizer(node(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"]))
        XCTAssertEqual(pieces(never, "a b"), ["a", "▁b"])
        XCTAssertThrowsError(try makePreTokenizer(node(["type": "Metaspace", "replacement": "▁", "add_prefix_space": false])))
    }

    // MARK: BPE model options

    func testBPELegacyMergesAndLeftmostTies() throws {
        let t = try tokenizer(["model": ["type": "BPE", "vocab": ["a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "aa": 5],
                                         "merges": ["a b", "ab c", "a a"]]])
        XCTAssertEqual(t.encode("abc"), [4])
        XCTAssertEqual(t.encode("abca"), [4, 0])
        XCTAssertEqual(t.encode("aaa"), [5, 0])  // equal ranks: leftmost first
        XCTAssertEqual(t.encode("aab"), [0, 3])  // "a b" (rank 0) beats "a a" (rank 2)
    }

    func testBPEUnknownTokensAndByteFallback() throws {
        let vocab: [String: Int] = ["a": 0, "b": 1, "ab": 2, "<unk>": 3, "<0x78>": 4, "<0xC3>": 5]
        func make(_ options: [String: Any]) throws -> Tokenizer {
            var model: [String: Any] = ["type": "BPE", "vocab": vocab, "merges": [["a", "b"]]]
            model.merge(options) { $1 }
            return try tokenizer(["model": model])
        }
        XCTAssertEqual(try make(["unk_token": "<unk>"]).encode("ayyb"), [0, 3, 3, 1])
        XCTAssertEqual(try make(["unk_token": "<unk>", "fuse_unk": true]).encode("ayyb"), [0, 3, 1])
        // Without unk_token unknown characters vanish, and their neighbours may merge.
        XCTAssertEqual(try make([:]).encode("ayb"), [2])
        // Byte fallback: "x" is <0x78>; "é" needs <0xC3><0xA9>, which is incomplete → unk.
        XCTAssertEqual(try make(["byte_fallback": true, "unk_token": "<unk>"]).encode("axbé"), [0, 4, 1, 3])
    }

    func testBPEContinuingSubwordPrefixAndIgnoreMerges() throws {
        let prefixed = try tokenizer(["model": ["type": "BPE", "continuing_subword_prefix": "##",
                                                "vocab": ["a": 0, "##b": 1, "ab": 2, "##c": 3, "abc": 4],
                                                "merges": [["a", "##b"], ["ab", "##c"]]]])
        XCTAssertEqual(prefixed.encode("abc"), [4])
        XCTAssertEqual(prefixed.encode("a"), [0])
        let vocab = ["a": 0, "b": 1, "c": 2, "abc": 3, "ab": 4]
        let plain = try tokenizer(["model": ["type": "BPE", "vocab": vocab, "merges": [["a", "b"]]]])
        XCTAssertEqual(plain.encode("abc"), [4, 2])
        let ignoring = try tokenizer(["model": ["type": "BPE", "vocab": vocab, "merges": [["a", "b"]], "ignore_merges": true]])
        XCTAssertEqual(ignoring.encode("abc"), [3])
    }

    // MARK: Added tokens

    func testNormalizedAddedTokensMatchAfterNormalization() throws {
        let t = try tokenizer([
            "normalizer": ["type": "Lowercase"],
            "pre_tokenizer": ["type": "WhitespaceSplit"],
            "model": ["type": "BPE", "vocab": ["a": 0, "b": 1, "<": 2, ">": 3, "s": 4, "S": 5], "merges": [String]()],
            "added_tokens": [
                ["id": 10, "content": "AB", "normalized": true, "special": false],
                ["id": 11, "content": "<s>", "normalized": false, "special": true],
            ],
        ])
        // "AB" is matched as its normalized form "ab"; "<s>" only literally on the raw text.
        XCTAssertEqual(t.encode("a Ab <s> <S>"), [0, 10, 11, 2, 4, 3])
        XCTAssertEqual(t.decode([10, 11]), "ab <s>")  // no decoder: tokens joined by spaces
        XCTAssertEqual(t.decode([10, 11], skipSpecialTokens: true), "ab")
    }

    // MARK: Post-processors, truncation, padding

    func testTemplateBertAndSequenceProcessors() throws {
        let template: [String: Any] = [
            "type": "TemplateProcessing",
            "single": [["SpecialToken": ["id": "[CLS]", "type_id": 0]], ["Sequence": ["id": "A", "type_id": 0]],
                       ["SpecialToken": ["id": "[SEP]", "type_id": 0]]],
            "pair": [["Sequence": ["id": "A", "type_id": 0]], ["Sequence": ["id": "B", "type_id": 1]]],
            "special_tokens": ["[CLS]": ["id": "[CLS]", "ids": [101], "tokens": ["[CLS]"]],
                               "[SEP]": ["id": "[SEP]", "ids": [102], "tokens": ["[SEP]"]]],
        ]
        let t = try tokenizer(["post_processor": template])
        XCTAssertEqual(t.encode("aa"), [101, 0, 0, 102])
        XCTAssertEqual(t.encode("aa", addSpecialTokens: false), [0, 0])
        let bert = try tokenizer(["post_processor": ["type": "BertProcessing", "sep": ["[SEP]", 102], "cls": ["[CLS]", 101]]])
        XCTAssertEqual(bert.encode("a"), [101, 0, 102])
        let sequence = try tokenizer(["post_processor": ["type": "Sequence", "processors": [
            ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false], template]]])
        XCTAssertEqual(sequence.encode("a"), [101, 0, 102])
        var missing = template
        missing["special_tokens"] = [String: Any]()
        XCTAssertThrowsError(try tokenizer(["post_processor": missing]))
    }

    func testTruncationAndPaddingFromTokenizerJSON() throws {
        let roberta: [String: Any] = ["type": "RobertaProcessing", "sep": ["</s>", 2], "cls": ["<s>", 1],
                                      "trim_offsets": true, "add_prefix_space": false]
        let t = try tokenizer([
            "post_processor": roberta,
            "truncation": ["direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0],
            "padding": ["strategy": ["Fixed": 6], "direction": "Right", "pad_to_multiple_of": NSNull(), "pad_id": 9,
                        "pad_type_id": 0, "pad_token": "<pad>"],
        ])
        XCTAssertEqual(t.encode("aaaaa"), [1, 0, 0, 2, 9, 9])  // room kept for <s> and </s>
        XCTAssertEqual(t.encode("aaaaa", addSpecialTokens: false), [0, 0, 0, 0, 9, 9])
        let left = try tokenizer([
            "truncation": ["direction": "Left", "max_length": 2, "strategy": "LongestFirst", "stride": 0],
            "padding": ["strategy": "BatchLongest", "direction": "Left", "pad_to_multiple_of": 4, "pad_id": 7],
        ])
        XCTAssertEqual(left.encode("aaa"), [7, 7, 0, 0])
    }

    // MARK: Decoders

    private func decode(_ decoder: [String: Any], _ tokens: [String]) throws -> String {
        try makeDecoder(node(decoder)).decodeChain(tokens).joined()
    }

    func testDecoders() throws {
        XCTAssertEqual(try decode(["type": "BPEDecoder", "suffix": "</w>"], ["hel", "lo</w>", "wor", "ld</w>"]), "hello world")
        XCTAssertEqual(try decode(["type": "ByteLevel"], ["Hello", "Ġthere", "Ċ", "Ã©", "<|x|>"]), "Hello there\n\u{E9}<|x|>")
        XCTAssertEqual(try decode(["type": "ByteLevel"], ["Ã"]), "\u{FFFD}")  // lone lead byte
        XCTAssertEqual(try decode(["type": "ByteFallback"], ["<0x61>", "<0xC3>", "<0xA9>", "b", "<0xFF>", "<0x41"]),
                       "a\u{E9}b\u{FFFD}<0x41")
        XCTAssertEqual(try decode(["type": "Strip", "content": " ", "start": 1, "stop": 1], ["  a  "]), " a ")
        XCTAssertEqual(try decode(["type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true],
                                  ["▁Hey", "▁friend", "!"]), "Hey friend!")
        // Llama's decoder chain.
        let llama: [String: Any] = ["type": "Sequence", "decoders": [
            ["type": "Replace", "pattern": ["String": "▁"], "content": " "],
            ["type": "ByteFallback"], ["type": "Fuse"],
            ["type": "Strip", "content": " ", "start": 1, "stop": 0],
        ]]
        XCTAssertEqual(try decode(llama, ["▁Hey", "▁", "<0xC3>", "<0xA9>", "▁friend"]), "Hey \u{E9} friend")
    }
}
