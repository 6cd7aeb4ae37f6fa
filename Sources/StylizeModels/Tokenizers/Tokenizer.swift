import Foundation

/// A Hugging Face tokenizer (tokenizer.json, or CLIP's vocab.json + merges.txt) that
/// produces the same ids as the `tokenizers` library, bit for bit.
///
/// Pipeline, as `TokenizerImpl::encode` runs it: added tokens are cut out of the raw
/// text, the rest is normalized, pre-tokenized into pieces, each piece goes through the
/// BPE model, optional truncation, the post-processor adds special tokens, optional
/// padding. Thread-safe: the only mutable state is the BPE word cache, behind a lock.
///
/// Not covered (a load error names the unsupported type): models other than BPE;
/// normalizers Bert, StripAccents, Precompiled, Nmt, ByteLevel; pre-tokenizers Bert,
/// Punctuation, Digits, CharDelimiterSplit, UnicodeScripts, FixedLength; decoders
/// WordPiece and CTC; BPE dropout. Only single sequences (no pairs) and no offsets.
/// Metaspace's `prepend_scheme: "first"` treats a piece as first when it starts the
/// input, which differs from the library only if a normalizer removed leading text.
public final class Tokenizer: Sendable {
    /// The file the tokenizer was read from (tokenizer.json, or vocab.json for CLIP files).
    public let source: String
    /// Every added token (special or not), in the file's order.
    public var addedTokens: [AddedToken] { added.tokens }
    /// The added tokens marked special (skipped by `decode(skipSpecialTokens: true)`).
    public var specialTokens: [AddedToken] { added.tokens.filter(\.special) }

    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: BPEModel
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    let added: AddedVocabulary
    let truncation: TruncationParams?
    let padding: PaddingParams?

    init(source: String, normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: BPEModel, postProcessor: PostProcessor?,
         decoder: TokenDecoder?, addedTokens: [AddedToken], truncation: TruncationParams? = nil, padding: PaddingParams? = nil) {
        self.source = source
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        // An added token whose content is in the model vocabulary takes the model's id,
        // as AddedVocabulary::add_tokens does.
        let resolved = addedTokens.map { t in
            AddedToken(id: model.tokenToId(t.content) ?? t.id, content: t.content, singleWord: t.singleWord,
                       lstrip: t.lstrip, rstrip: t.rstrip, normalized: t.normalized, special: t.special)
        }
        added = AddedVocabulary(tokens: resolved, normalizer: normalizer)
        self.truncation = truncation
        self.padding = padding
    }

    /// Loads `tokenizer.json` from `directory` if it exists, else CLIP-style `vocab.json` +
    /// `merges.txt` (with `tokenizer_config.json` for the BOS/EOS names when present).
    public convenience init(directory: String) throws {
        let json = directory + "/tokenizer.json"
        if FileManager.default.fileExists(atPath: json) {
            try self.init(tokenizerJSON: json)
            return
        }
        let vocab = directory + "/vocab.json", merges = directory + "/merges.txt"
        guard FileManager.default.fileExists(atPath: vocab) else {
            throw ModelError.fileNotFound(path: json, what: "tokenizer (neither tokenizer.json nor vocab.json + merges.txt)")
        }
        guard FileManager.default.fileExists(atPath: merges) else {
            throw ModelError.fileNotFound(path: merges, what: "merges.txt (needed with vocab.json when there is no tokenizer.json)")
        }
        try self.init(clipVocab: vocab, merges: merges, config: directory + "/tokenizer_config.json")
    }

    /// Loads a tokenizer.json file.
    public convenience init(tokenizerJSON path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError.fileNotFound(path: path, what: "tokenizer.json")
        }
        try self.init(tokenizerJSONData: data, file: path)
    }

    /// Parses tokenizer.json contents; `file` is used in error messages.
    public convenience init(tokenizerJSONData data: Data, file: String = "tokenizer.json") throws {
        let root = try TokenizerJSON.parse(data, file: file)
        if let version = try root.optionalString("version"), version != "1.0" {
            throw ModelError.unsupported(file: file, key: "version", value: "\"\(version)\"")
        }
        let modelNode = try root.required("model")
        let model = try BPEModel(modelNode)
        let normalizer = try root.child("normalizer").map(makeNormalizer)
        var added: [AddedToken] = []
        if let list = try root.child("added_tokens") {
            for t in try list.array() {
                added.append(AddedToken(
                    id: try t.int("id"), content: try t.string("content"),
                    singleWord: try t.bool("single_word", false), lstrip: try t.bool("lstrip", false),
                    rstrip: try t.bool("rstrip", false), normalized: try t.bool("normalized", true),
                    special: try t.bool("special", false)))
            }
        }
        self.init(source: file,
                  normalizer: normalizer,
                  preTokenizer: try root.child("pre_tokenizer").map(makePreTokenizer),
                  model: model,
                  postProcessor: try root.child("post_processor").map(makePostProcessor),
                  decoder: try root.child("decoder").map(makeDecoder),
                  addedTokens: added,
                  truncation: try root.child("truncation").map(TruncationParams.init),
                  padding: try root.child("padding").map(PaddingParams.init))
    }

    // MARK: - Encoding

    /// Token ids for `text`. With `addSpecialTokens` the post-processor's tokens (CLIP's
    /// BOS/EOS) are added; truncation / padding apply if tokenizer.json sets them.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var ids = encodeContent(text)
        if let truncation {
            ids = truncation.truncate(ids, reserve: addSpecialTokens ? (postProcessor?.addedCount ?? 0) : 0)
        }
        ids = postProcess(ids, addSpecialTokens: addSpecialTokens)
        return padding?.pad(ids) ?? ids
    }

    /// The ids before post-processing: added tokens, then normalize → pre-tokenize → BPE.
    func encodeContent(_ text: String) -> [Int] {
        var ids: [Int] = []
        for segment in added.extractAndNormalize(text, normalizer: normalizer) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece):
                let pieces = preTokenizer?.preTokenize(piece) ?? [piece]
                for p in pieces { ids += model.tokenize(p.text) }
            }
        }
        return ids
    }

    private func postProcess(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        postProcessor?.process(ids, addSpecialTokens: addSpecialTokens) ?? ids
    }

    /// Ids, attention mask and untruncated length of a fixed-length encoding.
    public struct PaddedEncoding: Sendable, Equatable {
        public let ids: [Int]
        /// 1 for real tokens (special tokens included), 0 for padding.
        public let attentionMask: [Int]
        /// How many ids `encode(text)` gives (before truncation).
        public let untruncatedLength: Int
    }

    /// Stable Diffusion's text-encoder input: `CLIPTokenizer(max_length:, truncation: true,
    /// padding: "max_length")`. The text is truncated so that, with the special tokens, it
    /// fits `maxLength` (EOS stays last), then padded on the right with `padId` (SD 1.x uses
    /// EOS 49407, SD 2.x uses 0). tokenizer.json's own truncation/padding are not used.
    public func encodePadded(_ text: String, maxLength: Int = 77, padId: Int) -> [Int] {
        encodePaddedWithMask(text, maxLength: maxLength, padId: padId).ids
    }

    public func encodePaddedWithMask(_ text: String, maxLength: Int = 77, padId: Int) -> PaddedEncoding {
        let content = encodeContent(text)
        let untruncated = postProcess(content, addSpecialTokens: true).count
        let reserve = postProcessor?.addedCount ?? 0
        var ids = postProcess(TruncationParams(maxLength: maxLength).truncate(content, reserve: reserve), addSpecialTokens: true)
        if ids.count > maxLength { ids = Array(ids.prefix(maxLength)) }  // maxLength smaller than the special tokens
        let real = ids.count
        ids += [Int](repeating: padId, count: maxLength - real)
        return PaddedEncoding(ids: ids, attentionMask: [Int](repeating: 1, count: real) + [Int](repeating: 0, count: maxLength - real),
                              untruncatedLength: untruncated)
    }

    // MARK: - Decoding and vocabulary

    /// Text for `ids`, through the tokenizer.json decoder (byte-level: lossless for any
    /// ids `encode` produced, up to normalization). Unknown ids are skipped, as in the library.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = added.decodingString(for: id) ?? model.idToToken[id] else { continue }
            if skipSpecialTokens && added.isSpecial(t) { continue }
            tokens.append(t)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// The id of a token string (added tokens first, then the model vocabulary).
    /// Adds the post-processor's special tokens (CLIP's BOS/EOS) around content ids.
    public func withSpecialTokens(_ ids: [Int]) -> [Int] { postProcess(ids, addSpecialTokens: true) }

    /// How many tokens `withSpecialTokens` adds.
    public var addedSpecialTokenCount: Int { postProcessor?.addedCount ?? 0 }

    public func tokenToId(_ token: String) -> Int? { added.id(of: token) ?? model.tokenToId(token) }

    /// The token string of an id (byte-level alphabet form for BPE tokens).
    public func idToToken(_ id: Int) -> String? { added.decodingString(for: id) ?? model.idToToken[id] }

    /// Vocabulary size including added tokens that are not in the model vocabulary
    /// (`get_vocab_size(with_added_tokens=True)`).
    public var vocabularySize: Int {
        model.vocab.count + added.tokens.filter { model.tokenToId($0.content) == nil }.count
    }
}
