import Foundation
import Synchronization

/// tokenizer.json's `model` of type BPE, with the tokenizers library's merge order:
/// repeatedly apply the lowest-ranked merge present, leftmost first, using a min-heap of
/// candidate merges (O(n log n) in the word length) exactly as `Word::merge_all` does,
/// including its rule for skipping stale heap entries.
final class BPEModel: Sendable {
    let vocab: [ExactString: Int]
    let idToToken: [Int: String]
    /// (left id, right id) → (rank, merged id); keyed by `left << 32 | right`.
    private let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkToken: String?
    private let unkId: Int?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool

    /// Word → ids. Words of 256 bytes or more are not cached, and the cache stops growing at
    /// `cacheCapacity` entries (the library's limits).
    private let cache = Locked<[ExactString: [Int]]>([:])
    static let cacheCapacity = 10_000
    static let maxCachedWordBytes = 256

    /// `merges` as (left, right) token pairs, rank = position. `file` names the source in errors.
    init(vocab: [ExactString: Int], merges: [(String, String)], unkToken: String?, continuingSubwordPrefix: String?,
         endOfWordSuffix: String?, fuseUnk: Bool, byteFallback: Bool, ignoreMerges: Bool, file: String, mergesKey: String) throws {
        self.vocab = vocab
        var reverse: [Int: String] = [:]
        reverse.reserveCapacity(vocab.count)
        for (k, v) in vocab { reverse[v] = k.string }
        idToToken = reverse
        let prefixBytes = continuingSubwordPrefix?.utf8.count ?? 0
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        for (rank, (a, b)) in merges.enumerated() {
            guard let aId = vocab[ExactString(a)] else {
                throw ModelError.invalidConfig(file: file, key: "\(mergesKey)[\(rank)]", reason: "merge uses '\(a)', which is not in the vocabulary")
            }
            guard let bId = vocab[ExactString(b)] else {
                throw ModelError.invalidConfig(file: file, key: "\(mergesKey)[\(rank)]", reason: "merge uses '\(b)', which is not in the vocabulary")
            }
            // The merged token drops the right part's continuing-subword prefix.
            let bBytes = Array(b.utf8)
            let merged = a + String(decoding: bBytes[min(prefixBytes, bBytes.count)...], as: UTF8.self)
            guard let newId = vocab[ExactString(merged)] else {
                throw ModelError.invalidConfig(file: file, key: "\(mergesKey)[\(rank)]",
                                               reason: "merged token '\(merged)' is not in the vocabulary")
            }
            // A repeated pair keeps its last rank, as the library's HashMap collect does.
            table[UInt64(aId) << 32 | UInt64(bId)] = (Int32(rank), Int32(newId))
        }
        self.merges = table
        self.unkToken = unkToken
        if let unk = unkToken {
            guard let id = vocab[ExactString(unk)] else {
                throw ModelError.invalidConfig(file: file, key: "model.unk_token", reason: "'\(unk)' is not in the vocabulary")
            }
            unkId = id
        } else {
            unkId = nil
        }
        self.continuingSubwordPrefix = continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
    }

    /// Parses a tokenizer.json `model` object of type BPE.
    convenience init(_ node: TokenizerJSON) throws {
        if let type = try node.optionalString("type"), type != "BPE" { throw node.unsupportedType("model", type) }
        if let dropout = try node.child("dropout") {
            let p = (dropout.value as? Double) ?? -1
            if p != 0 { throw ModelError.unsupported(file: node.file, key: dropout.path, value: "\(dropout.value) (BPE dropout is random; only null is supported)") }
        }
        let vocabNode = try node.required("vocab")
        guard let rawVocab = vocabNode.value as? [String: Any] else {
            throw vocabNode.error("expected an object of token → id, found \(TokenizerJSON.describe(vocabNode.value))")
        }
        let vocab = try Self.parseVocab(rawVocab, file: node.file, key: vocabNode.path)
        let mergesNode = try node.required("merges")
        guard let rawMerges = mergesNode.value as? [Any] else {
            throw mergesNode.error("expected a list of merges, found \(TokenizerJSON.describe(mergesNode.value))")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(rawMerges.count)
        for (i, m) in rawMerges.enumerated() {
            if let s = m as? String {
                // Legacy "a b" form: exactly one space.
                let parts = s.utf8.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw ModelError.invalidConfig(file: node.file, key: "\(mergesNode.path)[\(i)]", reason: "merge \"\(s)\" is not two tokens separated by one space")
                }
                merges.append((String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self)))
            } else if let pair = m as? [Any], pair.count == 2, let a = pair[0] as? String, let b = pair[1] as? String {
                merges.append((a, b))
            } else {
                throw ModelError.invalidConfig(file: node.file, key: "\(mergesNode.path)[\(i)]", reason: "expected \"a b\" or [\"a\", \"b\"]")
            }
        }
        try self.init(vocab: vocab, merges: merges,
                      unkToken: node.optionalString("unk_token"),
                      continuingSubwordPrefix: node.optionalString("continuing_subword_prefix"),
                      endOfWordSuffix: node.optionalString("end_of_word_suffix"),
                      fuseUnk: node.bool("fuse_unk", false),
                      byteFallback: node.bool("byte_fallback", false),
                      ignoreMerges: node.bool("ignore_merges", false),
                      file: node.file, mergesKey: mergesNode.path)
    }

    static func parseVocab(_ raw: [String: Any], file: String, key: String) throws -> [ExactString: Int] {
        var vocab: [ExactString: Int] = [:]
        vocab.reserveCapacity(raw.count)
        for (token, value) in raw {
            guard let n = value as? NSNumber, !TokenizerJSON.isBool(n), let id = value as? Int, id >= 0 else {
                throw ModelError.invalidConfig(file: file, key: key.isEmpty ? token : "\(key).\(token)",
                                               reason: "expected a non-negative integer id, found \(TokenizerJSON.describe(value))")
            }
            vocab[ExactString(token)] = id
        }
        return vocab
    }

    func tokenToId(_ token: String) -> Int? { vocab[ExactString(token)] }

    /// Ids for one pre-tokenized piece.
    func tokenize(_ word: String) -> [Int] {
        if word.utf8.isEmpty { return [] }
        let key = ExactString(word)
        if ignoreMerges, let id = vocab[key] { return [id] }
        if let hit = cache.withLock({ $0[key] }) { return hit }
        let ids = mergeWord(word)
        if word.utf8.count < Self.maxCachedWordBytes {
            cache.withLock { if $0.count < Self.cacheCapacity { $0[key] = ids } }
        }
        return ids
    }

    private struct Symbol {
        var id: Int
        var prev: Int
        var next: Int
        var byteCount: Int
    }

    /// `BPE::merge_word`: one symbol per scalar (with prefix / suffix), unknown scalars to
    /// byte-fallback tokens or the unk token (fused if asked), then `merge_all`.
    private func mergeWord(_ word: String) -> [Int] {
        var symbols: [Symbol] = []
        symbols.reserveCapacity(word.utf8.count)
        func add(_ id: Int, _ bytes: Int) {
            let n = symbols.count
            if n > 0 { symbols[n - 1].next = n }
            symbols.append(Symbol(id: id, prev: n - 1, next: -1, byteCount: bytes))
        }
        let scalars = Array(word.unicodeScalars)
        var pendingUnk: (id: Int, bytes: Int)?
        for (i, c) in scalars.enumerated() {
            let byteCount = c.utf8.count
            var s = String(c)
            if i > 0, let prefix = continuingSubwordPrefix { s = prefix + s }
            if i == scalars.count - 1, let suffix = endOfWordSuffix { s += suffix }
            if let id = vocab[ExactString(s)] {
                if let u = pendingUnk { add(u.id, u.bytes); pendingUnk = nil }
                add(id, byteCount)
                continue
            }
            if byteFallback {
                let ids = s.utf8.map { vocab[ExactString(String(format: "<0x%02X>", $0))] }
                if ids.allSatisfy({ $0 != nil }) {
                    for id in ids { add(id!, 1) }
                    continue
                }
            }
            if let unkId {
                if let u = pendingUnk {
                    if fuseUnk {
                        pendingUnk = (u.id, u.bytes + byteCount)
                    } else {
                        add(u.id, u.bytes)
                        pendingUnk = (unkId, byteCount)
                    }
                } else {
                    pendingUnk = (unkId, byteCount)
                }
            }
            // Without an unk token an unknown scalar is dropped, as in the library.
        }
        if let u = pendingUnk { add(u.id, u.bytes) }
        mergeAll(&symbols)
        return symbols.compactMap { $0.byteCount == 0 ? nil : $0.id }
    }

    private func merge(_ a: Int, _ b: Int) -> (rank: Int32, id: Int32)? { merges[UInt64(a) << 32 | UInt64(b)] }

    /// `Word::merge_all` without dropout.
    private func mergeAll(_ symbols: inout [Symbol]) {
        var heap = MergeHeap()
        for i in 0..<max(0, symbols.count - 1) {
            if let m = merge(symbols[i].id, symbols[i + 1].id) { heap.push(.init(rank: m.rank, pos: Int32(i), id: m.id)) }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            if symbols[pos].byteCount == 0 || symbols[pos].next == -1 { continue }
            let nextPos = symbols[pos].next
            let right = symbols[nextPos]
            // Stale entry: the pair at `pos` no longer produces this merge.
            guard let current = merge(symbols[pos].id, right.id), current.id == top.id else { continue }
            symbols[pos].id = Int(top.id)
            symbols[pos].byteCount += right.byteCount
            symbols[pos].next = right.next
            symbols[nextPos].byteCount = 0
            if right.next > -1 && right.next < symbols.count { symbols[right.next].prev = pos }
            let cur = symbols[pos]
            if cur.prev >= 0, let m = merge(symbols[cur.prev].id, cur.id) {
                heap.push(.init(rank: m.rank, pos: Int32(cur.prev), id: m.id))
            }
            if cur.next >= 0 && cur.next < symbols.count, let m = merge(cur.id, symbols[cur.next].id) {
                heap.push(.init(rank: m.rank, pos: Int32(pos), id: m.id))
            }
        }
    }
}

/// Binary min-heap of candidate merges ordered by (rank, position).
private struct MergeHeap {
    struct Entry {
        var rank: Int32
        var pos: Int32
        var id: Int32
        func before(_ o: Entry) -> Bool { rank != o.rank ? rank < o.rank : pos < o.pos }
    }

    private var items: [Entry] = []

    mutating func push(_ e: Entry) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].before(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < items.count && items[l].before(items[best]) { best = l }
            if r < items.count && items[r].before(items[best]) { best = r }
            if best == i { break }
            items.swapAt(i, best)
            i = best
        }
        return first
    }
}
