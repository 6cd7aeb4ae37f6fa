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

    private func assertThrows(_ body: @autoclosure () throws -> Any, contains fragments: [String],
                              file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an error containing \(fragments)", file: file, line: line)
        } catch {
            XCTAssertTrue(error is ModelError, "\(error) is not a ModelError", file: file, line: line)
            let message = "\(error)"
            for f in fragments {
                XCTAssertTrue(message.contains(f), "'\(message)' does not mention '\(f)'", file: file, line: line)
            }
        }
    }

    private let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}"#

    func testUnknownComponentTypesNameFileKeyAndType() throws {
        let normalizer = try write("n.json", #"{"normalizer": {"type": "Frobnicate"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: normalizer), contains: [normalizer, "normalizer.type", "Frobnicate", "normalizer"])
        let nested = try write("p.json", #"{"pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Whitespace"}, {"type": "UnicodeScripts"}]}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: nested), contains: [nested, "pre_tokenizer.pretokenizers[1].type", "UnicodeScripts", "pre-tokenizer"])
        let decoder = try write("d.json", #"{"decoder": {"type": "CTC"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: decoder), contains: [decoder, "decoder.type", "CTC"])
        let post = try write("pp.json", #"{"post_processor": {"type": "Magic"}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: post), contains: [post, "post_processor.type", "Magic"])
        let wordPiece = try write("m.json", #"{"model": {"type": "WordPiece", "vocab": {}}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: wordPiece), contains: [wordPiece, "model.type", "WordPiece"])
        let behavior = try write("b.json", #"{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways", "invert": false}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: behavior), contains: [behavior, "pre_tokenizer.behavior", "Sideways"])
    }

    func testMalformedJSON() throws {
        let notJSON = try write("bad.json", "{\"model\": {")
        assertThrows(try Tokenizer(tokenizerJSON: notJSON), contains: [notJSON, "not valid JSON"])
        let list = try write("list.json", "[1, 2]")
        assertThrows(try Tokenizer(tokenizerJSON: list), contains: [list, "expected a JSON object"])
        let noModel = try write("nomodel.json", #"{"normalizer": null}"#)
        assertThrows(try Tokenizer(tokenizerJSON: noModel), contains: [noModel, "'model'", "missing"])
        let vocabList = try write("vocab.json.bad", #"{"model": {"type": "BPE", "vocab": ["a"], "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: vocabList), contains: [vocabList, "model.vocab", "expected an object"])
        let badId = try write("id.json", #"{"model": {"type": "BPE", "vocab": {"a": "zero"}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: badId), contains: [badId, "model.vocab.a", "integer"])
        let unknownMerge = try write("merge.json", #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["a", "b"]]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unknownMerge), contains: [unknownMerge, "model.merges[0]", "'ab'", "not in the vocabulary"])
        let unknownPart = try write("merge2.json", #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unknownPart), contains: [unknownPart, "model.merges[0]", "'q'"])
        let badMerge = try write("merge3.json", #"{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a"]}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: badMerge), contains: [badMerge, "model.merges[0]"])
        let dropout = try write("dropout.json", #"{"model": {"type": "BPE", "dropout": 0.1, "vocab": {"a": 0}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: dropout), contains: [dropout, "model.dropout"])
        let unk = try write("unk.json", #"{"model": {"type": "BPE", "unk_token": "<unk>", "vocab": {"a": 0}, "merges": []}}"#)
        assertThrows(try Tokenizer(tokenizerJSON: unk), contains: [unk, "model.unk_token", "<unk>"])
        let regex = try write("regex.json", #"{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated", "invert": false}, \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: regex), contains: [regex, "pre_tokenizer.pattern", "(a"])
        let addedToken = try write("added.json", #"{"added_tokens": [{"content": "<s>"}], \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: addedToken), contains: [addedToken, "added_tokens[0].id", "missing"])
        let version = try write("version.json", #"{"version": "2.0", \#(model)}"#)
        assertThrows(try Tokenizer(tokenizerJSON: version), contains: [version, "version"])
    }

    func testMissingFiles() throws {
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/tokenizer.json", "not found"])
        assertThrows(try Tokenizer(tokenizerJSON: dir + "/nope.json"), contains: [dir + "/nope.json", "not found"])
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/merges.txt", "not found"])
    }

    func testBadCLIPFiles() throws {
        let vocab = try write("vocab.json", #"["a"]"#)
        _ = try write("merges.txt", "#version: 0.2\na b\n")
        assertThrows(try Tokenizer(directory: dir), contains: [vocab, "expected a JSON object"])
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        let merges = try write("merges.txt", "#version: 0.2\na b\na b c\n")
        assertThrows(try Tokenizer(directory: dir), contains: [merges, "line 3"])
        _ = try write("merges.txt", "#version: 0.2\nb q\n")
        assertThrows(try Tokenizer(directory: dir), contains: [merges, "'q'"])
        _ = try write("vocab.json", #"{"a": 0, "b": 1, "ab": 2}"#)
        _ = try write("merges.txt", "#version: 0.2\na b\n")
        assertThrows(try Tokenizer(directory: dir), contains: [dir + "/vocab.json", "<|startoftext|>"])
        // A valid minimal pair of files loads and adds BOS/EOS.
        _ = try write("vocab.json", #"{"a": 0, "b</w>": 1, "ab</w>": 2, "<|startoftext|>": 3, "<|endoftext|>": 4}"#)
        _ = try write("merges.txt", "#version: 0.2\na b</w>\n")
        XCTAssertEqual(try Tokenizer(directory: dir).encode("AB"), [3, 2, 4])
    }
}
