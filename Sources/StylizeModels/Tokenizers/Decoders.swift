import Foundation

/// tokenizer.json's `decoder`: turns the token strings of the ids back into text. Each
/// step maps a list of strings to a list of strings (`decode_chain`); the result is
/// their concatenation.
protocol TokenDecoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

func makeDecoder(_ node: TokenizerJSON) throws -> TokenDecoder {
    let type = try node.type()
    switch type {
    case "ByteLevel": return ByteLevelDecoder()
    case "BPEDecoder": return BPESuffixDecoder(suffix: try node.optionalString("suffix") ?? "</w>")
    case "Replace":
        return ReplaceDecoder(pattern: try TokenizerPattern(node.required("pattern")), content: try node.string("content"))
    case "Strip":
        let content = try node.string("content").unicodeScalars
        guard content.count == 1 else { throw try node.required("content").error("expected one character") }
        return StripDecoder(content: content.first!, start: try node.int("start"), stop: try node.int("stop"))
    case "Fuse": return FuseDecoder()
    case "ByteFallback": return ByteFallbackDecoder()
    case "Metaspace":
        let pre = try MetaspacePreTokenizer(node)
        return MetaspaceDecoder(replacement: pre.replacement, prependsSpace: pre.scheme != .never)
    case "Sequence":
        return DecoderSequence(decoders: try node.required("decoders").array().map(makeDecoder))
    default:
        throw node.unsupportedType("decoder", type)
    }
}

/// Alphabet characters back to bytes, all tokens at once, then lossy UTF-8 (a token with
/// a character outside the alphabet, such as an added token, contributes its own UTF-8).
struct ByteLevelDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for t in tokens {
            let start = bytes.count
            var ok = true
            for c in t.unicodeScalars {
                guard let b = ByteLevelAlphabet.byte(for: c) else { ok = false; break }
                bytes.append(b)
            }
            if !ok {
                bytes.removeSubrange(start...)
                bytes.append(contentsOf: t.utf8)
            }
        }
        // Like Rust's from_utf8_lossy, each maximal invalid subsequence becomes one U+FFFD.
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

/// `BPEDecoder`: the end-of-word suffix becomes a space, except in the last token.
struct BPESuffixDecoder: TokenDecoder {
    let suffix: String
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in t.replacingBytes(suffix, with: i == tokens.count - 1 ? "" : " ") }
    }
}

struct ReplaceDecoder: TokenDecoder {
    let pattern: TokenizerPattern
    let content: String
    func decodeChain(_ tokens: [String]) -> [String] { tokens.map { pattern.replaceAll(in: $0, with: content) } }
}

/// Removes up to `start` leading and `stop` trailing `content` characters from each token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { t in
            let chars = Array(t.unicodeScalars)
            var a = 0
            while a < min(start, chars.count) && chars[a] == content { a += 1 }
            var b = chars.count
            var removed = 0
            while removed < stop && b > a && chars[b - 1] == content { b -= 1; removed += 1 }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: chars[a..<b])
            return String(out)
        }
    }
}

struct FuseDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// `<0x41>`-style tokens back to bytes; invalid UTF-8 runs become one U+FFFD per byte.
struct ByteFallbackDecoder: TokenDecoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let s = String(validating: pending, as: UTF8.self) {
                out.append(s)
            } else {
                out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
            }
            pending.removeAll()
        }
        for t in tokens {
            let u = Array(t.utf8)
            if u.count == 6, t.bytesHavePrefix("<0x"), u[5] == UInt8(ascii: ">"),
               let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                pending.append(b)
            } else {
                flush()
                out.append(t)
            }
        }
        flush()
        return out
    }
}

/// Metaspace as a decoder: the replacement becomes a space, except in the first token
/// when a space was prepended while encoding.
struct MetaspaceDecoder: TokenDecoder {
    let replacement: Unicode.Scalar
    let prependsSpace: Bool

    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            var out = String.UnicodeScalarView()
            for c in t.unicodeScalars {
                if c == replacement {
                    if !(i == 0 && prependsSpace) { out.append(" ") }
                } else {
                    out.append(c)
                }
            }
            return String(out)
        }
    }
}

struct DecoderSequence: TokenDecoder {
    let decoders: [TokenDecoder]
    func decodeChain(_ tokens: [String]) -> [String] { decoders.reduce(tokens) { $1.decodeChain($0) } }
}
