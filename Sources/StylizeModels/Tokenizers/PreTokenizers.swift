import Foundation

/// A stretch of text on its way from the normalizer to the model.
struct PreToken {
    var text: String
    /// Starts at offset 0 of the original input (Metaspace's `prepend_scheme: "first"`).
    var isFirst: Bool
}

/// tokenizer.json's `pre_tokenizer`: splits (and may rewrite) each piece. The library
/// drops empty pieces after every split, so implementations never return empty text.
protocol PreTokenizer: Sendable {
    func preTokenize(_ piece: PreToken) -> [PreToken]
}

func makePreTokenizer(_ node: TokenizerJSON) throws -> PreTokenizer {
    let type = try node.type()
    switch type {
    case "Split":
        return SplitPreTokenizer(
            pattern: try TokenizerPattern(node.required("pattern")),
            behavior: try SplitBehavior(node.required("behavior")),
            invert: try node.bool("invert", false))
    case "ByteLevel":
        return try ByteLevelPreTokenizer(addPrefixSpace: node.bool("add_prefix_space", true), useRegex: node.bool("use_regex", true))
    case "Whitespace": return WhitespacePreTokenizer.shared
    case "WhitespaceSplit": return WhitespaceSplitPreTokenizer()
    case "Metaspace": return try MetaspacePreTokenizer(node)
    case "Sequence":
        return PreTokenizerSequence(preTokenizers: try node.required("pretokenizers").array().map(makePreTokenizer))
    default:
        throw node.unsupportedType("pre-tokenizer", type)
    }
}

/// What `Split` does with the delimiters it finds (tokenizers' SplitDelimiterBehavior).
enum SplitBehavior: String {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"

    init(_ node: TokenizerJSON) throws {
        let s = try node.stringValue()
        guard let b = SplitBehavior(rawValue: s) else {
            throw ModelError.unsupported(file: node.file, key: node.path, value: "\"\(s)\" (unknown split behavior)")
        }
        self = b
    }

    /// NormalizedString::split: turns the (range, isMatch) cover of `piece` into the
    /// pieces to keep, following the Rust folds exactly.
    func split(_ piece: PreToken, _ matches: [(range: Range<Int>, isMatch: Bool)]) -> [PreToken] {
        var kept: [Range<Int>] = []
        switch self {
        case .isolated:
            kept = matches.map(\.range)
        case .removed:
            kept = matches.filter { !$0.isMatch }.map(\.range)
        case .contiguous:
            var previousMatch = false
            for m in matches {
                if m.isMatch == previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<m.range.upperBound
                } else {
                    kept.append(m.range)
                }
                previousMatch = m.isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for m in matches {
                if m.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = last.lowerBound..<m.range.upperBound
                } else {
                    kept.append(m.range)
                }
                previousMatch = m.isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for m in matches.reversed() {
                if m.isMatch && !previousMatch, let last = kept.last {
                    kept[kept.count - 1] = m.range.lowerBound..<last.upperBound
                } else {
                    kept.append(m.range)
                }
                previousMatch = m.isMatch
            }
            kept.reverse()
        }
        return kept.compactMap { r in
            r.isEmpty ? nil : PreToken(text: piece.text.utf8Slice(r), isFirst: piece.isFirst && r.lowerBound == 0)
        }
    }
}

/// `Split`: cut on a string or regex pattern; `invert` swaps what counts as the delimiter
/// (CLIP uses Removed + invert to keep only the regex matches).
struct SplitPreTokenizer: PreTokenizer {
    let pattern: TokenizerPattern
    let behavior: SplitBehavior
    let invert: Bool

    func preTokenize(_ piece: PreToken) -> [PreToken] {
        var matches = pattern.findMatches(in: piece.text)
        if invert { matches = matches.map { ($0.range, !$0.isMatch) } }
        return behavior.split(piece, matches)
    }
}

/// `ByteLevel`: optional leading space, optional GPT-2 split, then every UTF-8 byte
/// becomes one printable alphabet character.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let gpt2Regex = try! TokenizerRegex(pattern: gpt2Pattern)

    func preTokenize(_ piece: PreToken) -> [PreToken] {
        var piece = piece
        if addPrefixSpace && piece.text.utf8.first != UInt8(ascii: " ") {
            piece.text = " " + piece.text
        }
        let parts = useRegex ? SplitBehavior.isolated.split(piece, Self.gpt2Regex.findMatches(in: piece.text)) : [piece]
        return parts.map { PreToken(text: ByteLevelAlphabet.encode($0.text), isFirst: $0.isFirst) }
    }
}

/// `Whitespace`: keeps runs of word characters and runs of other non-space characters
/// (the Rust regex crate's `\w+|[^\w\s]+`, whose classes ICU's `\w` and White_Space match).
struct WhitespacePreTokenizer: PreTokenizer {
    static let shared = WhitespacePreTokenizer()
    static let regex = try! TokenizerRegex(pattern: #"\w+|[^\w\p{White_Space}]+"#, native: true)

    func preTokenize(_ piece: PreToken) -> [PreToken] {
        SplitBehavior.removed.split(piece, Self.regex.findMatches(in: piece.text).map { ($0.range, !$0.isMatch) })
    }
}

/// `WhitespaceSplit`: drops every White_Space scalar and splits there.
struct WhitespaceSplitPreTokenizer: PreTokenizer {
    func preTokenize(_ piece: PreToken) -> [PreToken] {
        SplitBehavior.removed.split(piece, findScalarMatches(in: piece.text) { $0.isRustWhitespace })
    }
}

/// `Metaspace` (SentencePiece style): spaces become `replacement` (default "▁"), which
/// is prepended per `prepend_scheme` and then starts each piece.
struct MetaspacePreTokenizer: PreTokenizer {
    enum Scheme: String { case first, never, always }
    let replacement: Unicode.Scalar
    let scheme: Scheme
    let splitPieces: Bool

    init(_ node: TokenizerJSON) throws {
        let r = try node.string("replacement").unicodeScalars
        guard r.count == 1, let c = r.first else { throw try node.required("replacement").error("expected one character") }
        replacement = c
        var scheme = Scheme.always
        if let s = try node.optionalString("prepend_scheme") {
            guard let parsed = Scheme(rawValue: s) else {
                throw ModelError.unsupported(file: node.file, key: node.path + ".prepend_scheme", value: "\"\(s)\"")
            }
            scheme = parsed
        }
        // Older files only have add_prefix_space; false must come with "never" (an absent
        // prepend_scheme defaults to "always", so the library rejects it too).
        if try node.child("add_prefix_space") != nil, try !node.bool("add_prefix_space", true), scheme != .never {
            throw ModelError.invalidConfig(file: node.file, key: node.path + ".add_prefix_space",
                                           reason: "false does not match prepend_scheme \"\(scheme.rawValue)\"")
        }
        self.scheme = scheme
        splitPieces = try node.bool("split", true)
    }

    func preTokenize(_ piece: PreToken) -> [PreToken] {
        var scalars = String.UnicodeScalarView()
        for c in piece.text.unicodeScalars { scalars.append(c == " " ? replacement : c) }
        var text = String(scalars)
        let startsWithReplacement = text.unicodeScalars.first == replacement
        switch scheme {
        case .always: if !startsWithReplacement { text = String(replacement) + text }
        case .first: if !startsWithReplacement && piece.isFirst { text = String(replacement) + text }
        case .never: break
        }
        let replaced = PreToken(text: text, isFirst: piece.isFirst)
        guard splitPieces else { return text.utf8.isEmpty ? [] : [replaced] }
        return SplitBehavior.mergedWithNext.split(replaced, findScalarMatches(in: text) { $0 == replacement })
    }
}

struct PreTokenizerSequence: PreTokenizer {
    let preTokenizers: [PreTokenizer]

    func preTokenize(_ piece: PreToken) -> [PreToken] {
        var pieces = [piece]
        for p in preTokenizers { pieces = pieces.flatMap(p.preTokenize) }
        return pieces
    }
}
