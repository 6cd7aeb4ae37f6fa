import Foundation

// Helpers that work on UTF-8 bytes and Unicode scalars only. The tokenizers library works
// on Rust `char`s (scalars) and byte offsets; Swift's Character-based String API would
// treat "\r\n" or "e" + U+0301 as one unit and compare strings up to canonical
// equivalence, so none of it (hasPrefix, ==, replacingOccurrences, …) is used here.

extension String {
    /// The substring between two UTF-8 byte offsets (always on scalar boundaries here).
    func utf8Slice(_ range: Range<Int>) -> String {
        let v = utf8
        let a = v.index(v.startIndex, offsetBy: range.lowerBound)
        let b = v.index(a, offsetBy: range.count)
        return String(decoding: v[a..<b], as: UTF8.self)
    }

    /// Byte-exact equality (Swift's == would also equate canonically equivalent strings).
    func bytesEqual(_ other: String) -> Bool { utf8.elementsEqual(other.utf8) }

    /// Byte-exact prefix test.
    func bytesHavePrefix(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    /// Rust's `str::replace`: every non-overlapping occurrence, left to right, byte-exact.
    func replacingBytes(_ target: String, with replacement: String) -> String {
        let t = Array(target.utf8)
        if t.isEmpty { return self }
        let s = Array(utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            if s[i] == t[0], i + t.count <= s.count, s[i..<(i + t.count)].elementsEqual(t) {
                out.append(contentsOf: replacement.utf8)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A String key that hashes and compares by UTF-8 bytes, for vocabularies and caches:
/// "é" and "e\u{301}" are different tokens.
struct ExactString: Hashable {
    let string: String

    init(_ string: String) { self.string = string }

    static func == (a: ExactString, b: ExactString) -> Bool {
        var x = a.string, y = b.string
        return x.withUTF8 { xb in y.withUTF8 { yb in xb.count == yb.count && (xb.count == 0 || memcmp(xb.baseAddress!, yb.baseAddress!, xb.count) == 0) } }
    }

    func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension Unicode.Scalar {
    /// Rust's `char::is_whitespace` and the regex crate's `\s`: the White_Space property.
    var isRustWhitespace: Bool { properties.isWhitespace }

    /// The regex crate's Unicode `\w` (used by AddedVocabulary's single_word check):
    /// Alphabetic, Mark, Decimal_Number, Connector_Punctuation, Join_Control.
    var isRustWordCharacter: Bool {
        let p = properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
