/// GPT-2's byte ↔ printable-character table (docs/ARCHITECTURE.md#tokenizers): bytes
/// 0x21–0x7E, 0xA1–0xAC and 0xAE–0xFF stand for themselves, the other 68 bytes map in
/// order to U+0100, U+0101, …
enum ByteLevelAlphabet {
    /// Scalar for each byte value.
    static let scalars: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Byte for each scalar of the alphabet (the inverse table), indexed by scalar value < 324.
    static let bytes: [Int16] = {
        var table = [Int16](repeating: -1, count: 324)
        for (b, s) in scalars.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// Every byte of `text`'s UTF-8 becomes one alphabet scalar.
    static func encode(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for b in text.utf8 { out.append(scalars[Int(b)]) }
        return String(out)
    }

    /// The byte a scalar stands for, or nil when it is not in the alphabet.
    static func byte(for c: Unicode.Scalar) -> UInt8? {
        guard c.value < 324 else { return nil }
        let b = bytes[Int(c.value)]
        return b < 0 ? nil : UInt8(b)
    }
}
