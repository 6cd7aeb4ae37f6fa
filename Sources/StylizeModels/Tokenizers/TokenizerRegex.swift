import Foundation

/// A regular expression from tokenizer.json, compiled with ICU (NSRegularExpression) but
/// matching what the `tokenizers` library's Oniguruma build matches.
///
/// Where the two engines disagree on a shorthand class, the pattern is rewritten before
/// compiling (docs/ARCHITECTURE.md#tokenizers):
/// - `\s` / `\S`: Oniguruma's Unicode whitespace is U+0009–U+000D, U+0085 and the Z
///   categories. ICU documents `\s` as `[\t\n\f\r\p{Z}]` (no U+000B, U+0085); the ICU
///   in this toolchain actually matches both, but the set is spelled out so the result
///   does not depend on the ICU build. (With the documented set, 20 of the 758 CLIP
///   fixture strings come out wrong: `\s+` → " " must also eat U+000B and U+0085.)
/// - `\w` / `\W`: Oniguruma means Letter | Mark | Number | Connector_Punctuation; ICU uses
///   Alphabetic and only decimal numbers (so `²` or `½` would differ).
/// - `\h` / `\H`: a hex digit in Oniguruma, horizontal whitespace in ICU.
/// The replacements are bracketed sets, which ICU also accepts nested inside a class.
/// `^`/`$` follow Ruby syntax (Oniguruma's default): they match at `\n` line breaks.
final class TokenizerRegex: Sendable {
    let pattern: String
    let icuPattern: String
    private let regex: NSRegularExpression

    /// `literal`: the pattern is a plain string (tokenizer.json's `{"String": ...}`).
    /// `native`: an ICU pattern written here (not from tokenizer.json), compiled unchanged.
    init(pattern: String, literal: Bool = false, native: Bool = false) throws {
        self.pattern = pattern
        if native {
            icuPattern = pattern
            regex = try NSRegularExpression(pattern: pattern)
        } else if literal {
            icuPattern = pattern
            regex = try NSRegularExpression(pattern: pattern, options: [.ignoreMetacharacters])
        } else {
            icuPattern = Self.oniguruma2ICU(pattern)
            regex = try NSRegularExpression(pattern: icuPattern, options: [.anchorsMatchLines, .useUnixLineSeparators])
        }
    }

    /// Rewrites the shorthand classes listed above; everything else is copied as is.
    static func oniguruma2ICU(_ pattern: String) -> String {
        let space = #"\t-\r\x{85}\p{Z}"#
        let word = #"\p{L}\p{M}\p{N}\p{Pc}"#
        let hex = "0-9A-Fa-f"
        var out = String.UnicodeScalarView()
        var escaped = false
        for c in pattern.unicodeScalars {
            if escaped {
                escaped = false
                let replacement: String?
                switch c {
                case "s": replacement = "[\(space)]"
                case "S": replacement = "[^\(space)]"
                case "w": replacement = "[\(word)]"
                case "W": replacement = "[^\(word)]"
                case "h": replacement = "[\(hex)]"
                case "H": replacement = "[^\(hex)]"
                default: replacement = nil
                }
                if let r = replacement {
                    out.append(contentsOf: r.unicodeScalars)
                } else {
                    out.append("\\")
                    out.append(c)
                }
            } else if c == "\\" {
                escaped = true
            } else {
                out.append(c)
            }
        }
        if escaped { out.append("\\") }
        return String(out)
    }

    /// The matches in `text`, as UTF-8 byte offset ranges (empty matches included, as
    /// Oniguruma's find_iter reports them).
    func matches(in text: String) -> [Range<Int>] {
        let found = regex.matches(in: text, options: [], range: NSRange(location: 0, length: text.utf16.count))
        if found.isEmpty { return [] }
        let offsets = UTF16ToUTF8(text)
        return found.map { m in offsets[m.range.location]..<offsets[m.range.location + m.range.length] }
    }

    /// tokenizers' `Pattern::find_matches`: the whole string cut into consecutive pieces,
    /// each flagged as a match or not (empty input gives one empty non-match).
    func findMatches(in text: String) -> [(range: Range<Int>, isMatch: Bool)] {
        let total = text.utf8.count
        if total == 0 { return [(0..<0, false)] }
        var out: [(range: Range<Int>, isMatch: Bool)] = []
        var previous = 0
        for m in matches(in: text) {
            if previous != m.lowerBound { out.append((previous..<m.lowerBound, false)) }
            out.append((m, true))
            previous = m.upperBound
        }
        if previous != total { out.append((previous..<total, false)) }
        return out
    }
}

/// Maps UTF-16 offsets (what NSRegularExpression reports) to UTF-8 byte offsets; one
/// entry per UTF-16 unit plus the end, so a lookup is O(1).
private func UTF16ToUTF8(_ text: String) -> [Int] {
    var table: [Int] = []
    table.reserveCapacity(text.utf16.count + 1)
    var byte = 0
    for scalar in text.unicodeScalars {
        let units = scalar.utf16.count
        let bytes = scalar.utf8.count
        table.append(byte)
        if units == 2 { table.append(byte) }  // a match never starts inside a surrogate pair
        byte += bytes
    }
    table.append(byte)
    return table
}

/// tokenizers' `Pattern` for a character predicate: every matching Unicode scalar is its
/// own match, the stretches between them are non-matches.
func findScalarMatches(in text: String, _ isMatch: (Unicode.Scalar) -> Bool) -> [(range: Range<Int>, isMatch: Bool)] {
    if text.utf8.isEmpty { return [(0..<0, false)] }
    var out: [(range: Range<Int>, isMatch: Bool)] = []
    var lastOffset = 0
    var byte = 0
    for c in text.unicodeScalars {
        let size = c.utf8.count
        if isMatch(c) {
            if lastOffset < byte { out.append((lastOffset..<byte, false)) }
            out.append((byte..<(byte + size), true))
            lastOffset = byte + size
        }
        byte += size
    }
    if byte > lastOffset { out.append((lastOffset..<byte, false)) }
    return out
}
