import Foundation

/// A token added on top of the model's vocabulary (tokenizer.json `added_tokens`).
public struct AddedToken: Sendable, Equatable {
    public let id: Int
    public let content: String
    /// Matches only when not inside a word (no word character on either side).
    public let singleWord: Bool
    /// Also absorbs the whitespace on its left / right.
    public let lstrip: Bool
    public let rstrip: Bool
    /// Matched on the normalized text (with its normalized form) rather than the raw text.
    public let normalized: Bool
    /// Skipped by `decode(skipSpecialTokens: true)`.
    public let special: Bool

    public init(id: Int, content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool = false, special: Bool = true) {
        self.id = id
        self.content = content
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized
        self.special = special
    }
}

/// tokenizers' AddedVocabulary: finds added tokens in the input before anything else runs.
/// Non-normalized tokens are matched on the raw text; normalized ones on each remaining
/// stretch after normalization. Matching is leftmost-longest (the library builds an
/// Aho-Corasick automaton with that match kind), then single_word / lstrip / rstrip are
/// applied to each match.
struct AddedVocabulary: Sendable {
    let tokens: [AddedToken]
    private let byId: [Int: AddedToken]
    private let byContent: [ExactString: Int]
    /// Normalized form of normalized tokens whose normalization changes them (used for
    /// matching and, as in the library, for decoding).
    private let normalizedForm: [Int: String]
    private let specialContents: Set<ExactString>
    private let rawMatcher: LeftmostLongestMatcher
    private let normalizedMatcher: LeftmostLongestMatcher

    init(tokens: [AddedToken], normalizer: Normalizer?) {
        self.tokens = tokens
        var byId: [Int: AddedToken] = [:], byContent: [ExactString: Int] = [:], forms: [Int: String] = [:]
        var raw: [(String, Int)] = [], normalized: [(String, Int)] = []
        for t in tokens where !t.content.utf8.isEmpty {
            byId[t.id] = t
            byContent[ExactString(t.content)] = t.id
            if t.normalized {
                let form = normalizer?.normalize(t.content) ?? t.content
                if !form.bytesEqual(t.content) { forms[t.id] = form }
                normalized.append((form, t.id))
            } else {
                raw.append((t.content, t.id))
            }
        }
        self.byId = byId
        self.byContent = byContent
        normalizedForm = forms
        specialContents = Set(tokens.filter(\.special).map { ExactString($0.content) })
        rawMatcher = LeftmostLongestMatcher(raw)
        normalizedMatcher = LeftmostLongestMatcher(normalized)
    }

    func id(of content: String) -> Int? { byContent[ExactString(content)] }
    func token(for id: Int) -> AddedToken? { byId[id] }

    /// The string the decoder sees for an added token: its normalized form when that differs.
    func decodingString(for id: Int) -> String? {
        guard let t = byId[id] else { return nil }
        return normalizedForm[id] ?? t.content
    }

    func isSpecial(_ content: String) -> Bool { specialContents.contains(ExactString(content)) }

    /// A stretch of input: either an added token's id or text still to be tokenized.
    enum Segment {
        case token(Int)
        case text(PreToken)
    }

    /// `extract_and_normalize`: raw-text matches first, then normalize every stretch in
    /// between and look for normalized tokens in it.
    func extractAndNormalize(_ text: String, normalizer: Normalizer?) -> [Segment] {
        var out: [Segment] = []
        for (range, id) in split(text, rawMatcher) {
            if let id { out.append(.token(id)); continue }
            let piece = text.utf8Slice(range)
            let normalized = normalizer?.normalize(piece) ?? piece
            for (r, nid) in split(normalized, normalizedMatcher) {
                if let nid {
                    out.append(.token(nid))
                } else {
                    out.append(.text(PreToken(text: normalized.utf8Slice(r), isFirst: range.lowerBound == 0 && r.lowerBound == 0)))
                }
            }
        }
        return out
    }

    /// `find_matches`: the sentence cut into added-token matches and the text between,
    /// as UTF-8 byte ranges; empty stretches are dropped (the library filters them).
    private func split(_ sentence: String, _ matcher: LeftmostLongestMatcher) -> [(Range<Int>, Int?)] {
        let bytes = Array(sentence.utf8)
        if bytes.isEmpty { return [] }
        if matcher.isEmpty { return [(0..<bytes.count, nil)] }
        var splits: [(Range<Int>, Int?)] = []
        var startOffset = 0
        for (matchStart, matchEnd, id) in matcher.matches(in: bytes) {
            var start = matchStart, stop = matchEnd
            let token = byId[id]!
            if token.singleWord {
                let startSpace = start == 0 || !Self.lastScalar(bytes, before: start).isRustWordCharacter
                let stopSpace = stop == bytes.count || !Self.firstScalar(bytes, at: stop).isRustWordCharacter
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var s = start
                while s > 0 {
                    let c = Self.lastScalar(bytes, before: s)
                    guard c.isRustWhitespace else { break }
                    s -= c.utf8.count
                }
                start = max(s, startOffset)
            }
            if token.rstrip {
                while stop < bytes.count {
                    let c = Self.firstScalar(bytes, at: stop)
                    guard c.isRustWhitespace else { break }
                    stop += c.utf8.count
                }
            }
            start = max(start, startOffset)  // never overlap what a previous rstrip took
            if startOffset < start { splits.append((startOffset..<start, nil)) }
            splits.append((start..<stop, id))
            startOffset = stop
        }
        if startOffset < bytes.count { splits.append((startOffset..<bytes.count, nil)) }
        return splits
    }

    private static func lastScalar(_ bytes: [UInt8], before end: Int) -> Unicode.Scalar {
        var s = end - 1
        while s > 0 && bytes[s] & 0xC0 == 0x80 { s -= 1 }
        return decodeScalar(bytes, s)
    }

    private static func firstScalar(_ bytes: [UInt8], at start: Int) -> Unicode.Scalar { decodeScalar(bytes, start) }

    private static func decodeScalar(_ bytes: [UInt8], _ i: Int) -> Unicode.Scalar {
        var it = bytes[i...].makeIterator()
        var decoder = UTF8()
        if case .scalarValue(let c) = decoder.decode(&it) { return c }
        return "\u{FFFD}"
    }
}

/// Leftmost-longest, non-overlapping matching of a set of byte strings: at the first
/// position where any pattern matches, take the longest one, continue after it.
struct LeftmostLongestMatcher: Sendable {
    /// Patterns by first byte, longest first.
    private var byFirstByte: [[(bytes: [UInt8], id: Int)]] = Array(repeating: [], count: 256)
    let isEmpty: Bool

    init(_ patterns: [(String, Int)]) {
        var seen = Set<ExactString>()
        for (s, id) in patterns where !s.utf8.isEmpty && seen.insert(ExactString(s)).inserted {
            let b = Array(s.utf8)
            byFirstByte[Int(b[0])].append((b, id))
        }
        for i in 0..<256 { byFirstByte[i].sort { $0.bytes.count > $1.bytes.count } }
        isEmpty = seen.isEmpty
    }

    func matches(in text: [UInt8]) -> [(start: Int, end: Int, id: Int)] {
        var out: [(start: Int, end: Int, id: Int)] = []
        var i = 0
        outer: while i < text.count {
            for p in byFirstByte[Int(text[i])] where i + p.bytes.count <= text.count {
                if text[i..<(i + p.bytes.count)].elementsEqual(p.bytes) {
                    out.append((i, i + p.bytes.count, p.id))
                    i += p.bytes.count
                    continue outer
                }
            }
            i += 1
        }
        return out
    }
}
