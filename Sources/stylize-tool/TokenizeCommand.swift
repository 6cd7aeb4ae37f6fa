import ArgumentParser
import Foundation
import StylizeModels

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids a tokenizer folder gives for a text.",
        discussion: """
        The folder holds tokenizer.json, or CLIP's vocab.json + merges.txt. The ids are the ones the Hugging Face `tokenizers` library gives (`Tokenizer.from_file(...).encode(TEXT).ids`), special tokens included unless --no-special-tokens.

        With --json the output is one line, the ids as a JSON array: [49406, 320, 1125, 49407]. Otherwise it is a table with one row per token: position, id, the token as stored in the vocabulary (byte-level BPE shows a space as "Ġ" and a newline as "Ċ"), and in quotes the text that id decodes to on its own (a token holding part of a multi-byte character shows "�"). Control characters and backslashes are escaped (\\n, \\u{85}, \\\\). A last line gives the count.

        Put `--` before a TEXT that starts with "-".
        """)

    @Option(help: "Tokenizer folder (tokenizer.json, or vocab.json + merges.txt).")
    var tokenizer: String
    @Flag(help: "Print only the ids, as a JSON array.")
    var json = false
    @Flag(help: "Leave out the post-processor's special tokens (CLIP's BOS/EOS).")
    var noSpecialTokens = false
    @Argument(help: "The text to tokenize.")
    var text: String

    func run() throws {
        try reportingErrors {
            let t = try StylizeModels.Tokenizer(directory: tokenizer)
            let ids = t.encode(text, addSpecialTokens: !noSpecialTokens)
            if json {
                print("[" + ids.map(String.init).joined(separator: ", ") + "]")
                return
            }
            let rows = ids.enumerated().map { i, id in
                [String(i), String(id), escape(t.idToToken(id) ?? "?"), "\"" + escape(t.decode([id])) + "\""]
            }
            let header = ["#", "id", "token", "text"]
            let widths = (0..<4).map { c in ([header] + rows).map { $0[c].unicodeScalars.count }.max()! }
            for row in [header] + rows {
                let cells = row.enumerated().map { c, cell in
                    c < 2 ? String(repeating: " ", count: widths[c] - cell.unicodeScalars.count) + cell
                          : cell + String(repeating: " ", count: widths[c] - cell.unicodeScalars.count)
                }
                print(cells.joined(separator: "  ").replacingOccurrences(of: " +$", with: "", options: .regularExpression))
            }
            print("\(ids.count) token\(ids.count == 1 ? "" : "s")")
        }
    }

    /// Control and separator characters as escapes, so each row stays on one line.
    private func escape(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            default:
                let category = c.properties.generalCategory
                if category == .control || category == .lineSeparator || category == .paragraphSeparator || category == .format {
                    out += String(format: "\\u{%X}", c.value)
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out
    }
}
