import Foundation
import StylizeModels
import XCTest

/// Malformed tokenizer files are thrown ModelErrors naming the file and the key or
/// component type at fault.
final class TokenizerErrorTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "stylize-tokenizer-errors-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func write(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    func testUnknownComponentTypesNameFileKeyAndType() throws {
        let normalizer = try write("n.json", #"{"normalizer": {"type": "Frobnicate"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: normalizer), contains: [normalizer, "normalizer.type", "Frobnicate", "normalizer"], modelError: true)
        let nested = try write("p.json", #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "UnicodeScripts"}]}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: nested), contains: [nested, "pre_tokenizer.pretokenizers[1].type", "UnicodeScripts", "pre-tokenizer"], modelError: true)
        let decoder = try write("d.json", #"{"decoder": {"type": "CTC"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: decoder), contains: [decoder, "decoder.type", "CTC"], modelError: true)
        let post = try write("pp.json", #"{"post_processor": {"type": "Magic"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: post), contains: [post, "post_processor.type", "Magic"], modelError: true)
        let wordPiece = try write("m.json", #"{"model": {"type": "WordPiece", "vocab": {}}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: wordPiece), contains: [wordPiece, "model.type", "WordPiece"], modelError: true)
        let behavior = try write("b.json", #"{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: behavior), contains: [behavior, "pre_tokenizer.behavior", "Sideways"], modelError: true)
    }

    func testMalformedJSON() throws {
        let notJSON = try write("bad.json", "{\"model\": {")
        assertThrows(try Tokenizer(tokenizerJSON: notJSON), contains: [notJSON, "not valid JSON"], modelError: true)
        let list = try write("list.json", "[1, 2]")
        assertThrows(try Tokenizer(tokenizerJSON: list), contains: [list, "expected a JSON object"], modelError: true)
        let noModel = try write("nomodel.json", #"{"normalizer": null}"#)
        assertThrows(try Tokenizer(tokenizerJSON: noModel), contains: [noModel, "'model'", "missing"], modelError: true)
        let vocabList = try write("vocab.json.bad", #"{"model": {"type": "BPE", "vocab": ["a"], "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: vocabList), contains: [vocabList, "model.vocab", "expected an object"], modelError: true)
        let badId = try write("id.json", #"{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: badId), contains: [badId, "model.vocab.a", "integer"], modelError: true)
        let unknownMerge = try write("merge.json", #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unknownMerge), contains: [unknownMerge, "model.merges[0]", "'ab'", "not in the vocabulary"], modelError: true)
        let unknownPart = try write("merge2.json", #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unknownPart), contains: [unknownPart, "model.merges[0]", "'q'"], modelError: true)
        let badMerge = try write("merge3.json", #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: badMerge), contains: [badMerge, "model.merges[0]"], modelError: true)
        let dropout = try write("dropout.json", #"{"model": {"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: dropout), contains: [dropout, "model.dropout"], modelError: true)
        let unk = try write("unk.json", #"{"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unk), contains: [unk, "model.unk_token", "<unk>"], modelError: true)
        let regex = try write("regex.json", #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated", "invert": false}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: regex), contains: [regex, "pre_tokenizer.pattern", "(a"], modelError: true)
        let addedToken = try write("added.json", #"{"added_tokens": [{"content": "<s>"}], \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: addedToken), contains: [addedToken, "added_tokens[0].id", "missing"], modelError: true)
        let version = try write("version.json", #"{"version": "2.0", \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: version), contains: [version, "version"], modelError: true)
    }

    func testMissingFiles() throws {
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/tokenizer.json", "not found"], modelError: true)
        assertThrows(try Tokenizer(tokenizerJSON: dir + "/nope.json"), contains: [dir + "/nope.json", "not found"], modelError: true)
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/merges.txt", "not found"], modelError: true)
    }

    func testBadCLIPFiles() throws {
        let vocab = try write("vocab.json", #"["a"]"#)
        _ = try write("merges.txt", "#version: 0.2\na b\n")
        assertThrows(try Tokenizer(directory: dir), contains: [vocab, "expected a JSON object"], modelError: true)
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        let merges = try write("merges.txt", "#version: 0.2\na b\na b c\n")
        assertThrows(try Tokenizer(directory: dir), contains: [merges, "line 3"], modelError: true)
        _ = try write("merges.txt", "#version: 0.2\nb q\n")
        assertThrows(try Tokenizer(directory: dir), contains: [merges, "'q'"], modelError: true)
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2}"#)
        _ = try write("merges.txt", "#version: 0.2\na b\n")
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/vocab.json", "<|startoftext|>"], modelError: true)
        // A valid minimal pair of files loads and adds BOS/EOS.
        _ = try write("vocab.json", #"{"a": 0, "b</w>": 1, "ab</w>": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        _ = try write("merges.txt", "#version: 0.2\na b</w>\n")
        XCTAssertEqual(try Tokenizer(directory: dir).encode("AB"), [3, 2, 4])
    }
}
