import Foundation

extension Tokenizer {
    /// CLIP's tokenizer from `vocab.json` + `merges.txt`, built as transformers'
    /// CLIPTokenizer (= CLIPTokenizerFast) builds it, so the ids equal those of the
    /// tokenizer.json it saves: NFC, `\s+` → " ", lowercase; Split (Removed, invert) on
    /// CLIP's regex, which starts with the BOS/EOS strings; ByteLevel without prefix space;
    /// BPE with `</w>` and unk = EOS; BOS + ids + EOS. The special strings in the regex
    /// matter: "<|ENDOFTEXT|>" is not an added token (those match the raw text) but,
    /// once lowercased, stays one piece.
    convenience init(clipVocab vocabFile: String, merges mergesFile: String, config configFile: String) throws {
        let root = try TokenizerJSON.load(file: vocabFile, what: "vocab.json")
        let vocab = try BPEModel.parseVocab(try root.object(), file: vocabFile, key: "")
        let merges = try Self.readMerges(mergesFile)

        var bos = "<|startoftext|>", eos = "<|endoftext|>", unk = "<|endoftext|>"
        if FileManager.default.fileExists(atPath: configFile) {
            let config = try TokenizerJSON.load(file: configFile, what: "tokenizer_config.json")
            func name(_ key: String) throws -> String? {
                guard let node = try config.child(key) else { return nil }
                if let s = node.value as? String { return s }
                return try node.string("content")  // {"content": ..., "lstrip": ...}
            }
            bos = try name("bos_token") ?? bos
            eos = try name("eos_token") ?? eos
            unk = try name("unk_token") ?? unk
        }
        func id(_ token: String, _ role: String) throws -> Int {
            guard let id = vocab[ExactString(token)] else {
                throw ModelError.invalidConfig(file: vocabFile, key: token, reason: "CLIP \(role) token is not in the vocabulary")
            }
            return id
        }
        let bosId = try id(bos, "BOS"), eosId = try id(eos, "EOS")
        _ = try id(unk, "unknown")

        let model = try BPEModel(vocab: vocab, merges: merges, unkToken: unk, continuingSubwordPrefix: "",
                                 endOfWordSuffix: "</w>", fuseUnk: false, byteFallback: false, ignoreMerges: false,
                                 file: mergesFile, mergesKey: "merges")
        let normalizer = NormalizerSequence(normalizers: [
            UnicodeNormalizer(form: .nfc),
            ReplaceNormalizer(pattern: try TokenizerPattern(regex: #"\s+"#), content: " "),
            LowercaseNormalizer(),
        ])
        let escape = { (s: String) in NSRegularExpression.escapedPattern(for: s) }
        let split = "\(escape(bos))|\(escape(eos))|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"
        let preTokenizer = PreTokenizerSequence(preTokenizers: [
            SplitPreTokenizer(pattern: try TokenizerPattern(regex: split), behavior: .removed, invert: true),
            ByteLevelPreTokenizer(addPrefixSpace: false, useRegex: true),
        ])
        var specials = [AddedToken(id: bosId, content: bos)]
        if !eos.bytesEqual(bos) { specials.append(AddedToken(id: eosId, content: eos)) }
        self.init(source: vocabFile, normalizer: normalizer, preTokenizer: preTokenizer, model: model,
                  postProcessor: ClsSepProcessor(cls: (bos, bosId), sep: (eos, eosId)),
                  decoder: ByteLevelDecoder(), addedTokens: specials)
    }

    /// merges.txt: an optional `#version` line, then one "a b" pair per line. Like the
    /// library, lines starting with "#version" are skipped and any other line must hold
    /// exactly two space-separated tokens (a trailing newline is fine).
    static func readMerges(_ file: String) throws -> [(String, String)] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ModelError.fileNotFound(path: file, what: "merges.txt")
        }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true { lines.removeLast() }
        var merges: [(String, String)] = []
        merges.reserveCapacity(lines.count)
        for (n, raw) in lines.enumerated() {
            var line = raw
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }  // BufRead::lines strips "\r\n"
            if line.starts(with: Array("#version".utf8)) { continue }
            let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw ModelError.invalidConfig(file: file, key: "line \(n + 1)", reason: "expected two tokens separated by one space")
            }
            merges.append((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)))
        }
        return merges
    }
}

extension TokenizerPattern {
    /// A pattern built in code rather than read from tokenizer.json.
    init(regex: String) throws { self.regex = try TokenizerRegex(pattern: regex) }
}
