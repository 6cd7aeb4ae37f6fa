import Foundation

/// tokenizer.json's `normalizer`: rewrites the text between added tokens before it is
/// split. Offsets are not tracked (only ids are produced), so a normalizer is a plain
/// String → String function with the tokenizers library's exact semantics.
protocol Normalizer: Sendable {
    func normalize(_ text: String) -> String
}

/// Builds a normalizer from its JSON; an unknown `type` is an error naming the file and key.
func makeNormalizer(_ node: TokenizerJSON) throws -> Normalizer {
    let type = try node.type()
    switch type {
    case "NFC": return UnicodeNormalizer(form: .nfc)
    case "NFD": return UnicodeNormalizer(form: .nfd)
    case "NFKC": return UnicodeNormalizer(form: .nfkc)
    case "NFKD": return UnicodeNormalizer(form: .nfkd)
    case "Lowercase": return LowercaseNormalizer()
    case "Strip":
        return StripNormalizer(left: try node.bool("strip_left", true), right: try node.bool("strip_right", true))
    case "Replace":
        return ReplaceNormalizer(pattern: try TokenizerPattern(node.required("pattern")), content: try node.string("content"))
    case "Prepend": return PrependNormalizer(prefix: try node.string("prepend"))
    case "Sequence":
        return NormalizerSequence(normalizers: try node.required("normalizers").array().map(makeNormalizer))
    default:
        throw node.unsupportedType("normalizer", type)
    }
}

/// NFC / NFD / NFKC / NFKD (Foundation's ICU-backed mappings).
struct UnicodeNormalizer: Normalizer {
    enum Form { case nfc, nfd, nfkc, nfkd }
    let form: Form

    func normalize(_ text: String) -> String {
        switch form {
        case .nfc: return text.precomposedStringWithCanonicalMapping
        case .nfd: return text.decomposedStringWithCanonicalMapping
        case .nfkc: return text.precomposedStringWithCompatibilityMapping
        case .nfkd: return text.decomposedStringWithCompatibilityMapping
        }
    }
}

/// Rust's `char::to_lowercase` one scalar at a time: full (multi-scalar) mappings such as
/// "İ" → "i̇", but no context rules, so a final "Σ" becomes "σ", not "ς"
/// (String.lowercased() would apply the final-sigma rule).
struct LowercaseNormalizer: Normalizer {
    func normalize(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for c in text.unicodeScalars {
            if c.isASCII {
                out.append(c.value >= 0x41 && c.value <= 0x5A ? Unicode.Scalar(c.value + 32)! : c)
            } else {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            }
        }
        return String(out)
    }
}

/// Removes leading and/or trailing White_Space scalars.
struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool

    func normalize(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var a = 0, b = scalars.count
        if left { while a < b, scalars[a].isRustWhitespace { a += 1 } }
        if right { while b > a, scalars[b - 1].isRustWhitespace { b -= 1 } }
        if a == 0 && b == scalars.count { return text }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[a..<b])
        return String(out)
    }
}

/// Replaces every match of a string or regex pattern by `content` (taken literally).
struct ReplaceNormalizer: Normalizer {
    let pattern: TokenizerPattern
    let content: String

    func normalize(_ text: String) -> String { pattern.replaceAll(in: text, with: content) }
}

/// Prefixes non-empty text (SentencePiece-style "▁").
struct PrependNormalizer: Normalizer {
    let prefix: String

    func normalize(_ text: String) -> String { text.utf8.isEmpty ? text : prefix + text }
}

struct NormalizerSequence: Normalizer {
    let normalizers: [Normalizer]

    func normalize(_ text: String) -> String { normalizers.reduce(text) { $1.normalize($0) } }
}

/// tokenizer.json's `{"String": "..."}` or `{"Regex": "..."}` pattern (Split, Replace).
struct TokenizerPattern: Sendable {
    let regex: TokenizerRegex

    init(_ node: TokenizerJSON) throws {
        let o = try node.object()
        if let s = o["String"] as? String {
            regex = try Self.compile(node, s, literal: true)
        } else if let r = o["Regex"] as? String {
            regex = try Self.compile(node, r, literal: false)
        } else {
            throw node.error("expected {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    private static func compile(_ node: TokenizerJSON, _ pattern: String, literal: Bool) throws -> TokenizerRegex {
        do {
            return try TokenizerRegex(pattern: pattern, literal: literal)
        } catch {
            throw node.error("cannot compile regex \(pattern): \(error)")
        }
    }

    func findMatches(in text: String) -> [(range: Range<Int>, isMatch: Bool)] { regex.findMatches(in: text) }

    func replaceAll(in text: String, with content: String) -> String {
        let matches = regex.matches(in: text)
        if matches.isEmpty { return text }
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var last = 0
        for m in matches {
            out.append(contentsOf: bytes[last..<m.lowerBound])
            out.append(contentsOf: content.utf8)
            last = m.upperBound
        }
        out.append(contentsOf: bytes[last...])
        return String(decoding: out, as: UTF8.self)
    }
}
