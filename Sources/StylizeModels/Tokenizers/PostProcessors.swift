import Foundation

/// tokenizer.json's `post_processor`, for single sequences (pairs are not used by the
/// text encoders): adds the special tokens around the ids when asked to.
protocol PostProcessor: Sendable {
    /// How many ids `process(…, addSpecialTokens: true)` adds; truncation reserves room for them.
    var addedCount: Int { get }
    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int]
}

func makePostProcessor(_ node: TokenizerJSON) throws -> PostProcessor {
    let type = try node.type()
    switch type {
    case "RobertaProcessing", "BertProcessing":
        return try ClsSepProcessor(cls: tokenAndId(node.required("cls")), sep: tokenAndId(node.required("sep")))
    case "TemplateProcessing": return try TemplateProcessor(node)
    case "ByteLevel": return NoOpProcessor()
    case "Sequence":
        return ProcessorSequence(processors: try node.required("processors").array().map(makePostProcessor))
    default:
        throw node.unsupportedType("post-processor", type)
    }
}

/// `["<s>", 0]` in Roberta/Bert processing.
private func tokenAndId(_ node: TokenizerJSON) throws -> (String, Int) {
    let a = try node.array()
    guard a.count == 2 else { throw node.error("expected [token, id]") }
    return (try a[0].stringValue(), try a[1].intValue())
}

/// RobertaProcessing and BertProcessing agree for one sequence: CLS + ids + SEP
/// (CLIP's tokenizer.json uses Roberta with BOS as CLS and EOS as SEP).
struct ClsSepProcessor: PostProcessor {
    let cls: (token: String, id: Int)
    let sep: (token: String, id: Int)
    var addedCount: Int { 2 }

    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        addSpecialTokens ? [cls.id] + ids + [sep.id] : ids
    }
}

/// ByteLevel as a post-processor only trims offsets; ids pass through.
struct NoOpProcessor: PostProcessor {
    var addedCount: Int { 0 }
    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int] { ids }
}

/// TemplateProcessing's `single` template, e.g. `[{"SpecialToken": {"id": "<s>"}},
/// {"Sequence": {"id": "A"}}]`, with ids from its `special_tokens` table.
struct TemplateProcessor: PostProcessor {
    enum Piece {
        case sequence
        case special([Int])
    }
    let pieces: [Piece]

    init(_ node: TokenizerJSON) throws {
        var table: [String: [Int]] = [:]
        if let specials = try node.child("special_tokens") {
            for (name, value) in try specials.object() {
                let entry = TokenizerJSON(file: node.file, path: "\(specials.path).\(name)", value: value)
                table[name] = try entry.required("ids").array().map { try $0.intValue() }
            }
        }
        let single = try node.required("single")
        var pieces: [Piece] = []
        for p in try single.array() {
            let o = try p.object()
            if o["Sequence"] != nil {
                pieces.append(.sequence)
            } else if o["SpecialToken"] != nil {
                let id = try p.required("SpecialToken").string("id")
                guard let ids = table[id] else {
                    throw ModelError.invalidConfig(file: node.file, key: "\(node.path).special_tokens",
                                                   reason: "template uses '\(id)', which is not listed")
                }
                pieces.append(.special(ids))
            } else {
                throw p.error("expected {\"Sequence\": …} or {\"SpecialToken\": …}")
            }
        }
        self.pieces = pieces
    }

    var addedCount: Int {
        pieces.reduce(0) { n, p in if case .special(let ids) = p { return n + ids.count } else { return n } }
    }

    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        var out: [Int] = []
        for p in pieces {
            switch p {
            case .sequence: out += ids
            case .special(let s): if addSpecialTokens { out += s }
            }
        }
        return out
    }
}

struct ProcessorSequence: PostProcessor {
    let processors: [PostProcessor]
    var addedCount: Int { processors.reduce(0) { $0 + $1.addedCount } }
    func process(_ ids: [Int], addSpecialTokens: Bool) -> [Int] {
        processors.reduce(ids) { $1.process($0, addSpecialTokens: addSpecialTokens) }
    }
}

/// tokenizer.json's `truncation` (single sequence: cut to `max_length` minus the special
/// tokens the post-processor will add, from the right or the left).
struct TruncationParams: Sendable {
    let maxLength: Int
    let fromLeft: Bool

    init(_ node: TokenizerJSON) throws {
        maxLength = try node.int("max_length")
        guard maxLength >= 0 else { throw try node.required("max_length").error("must not be negative, is \(maxLength)") }
        let direction = try node.optionalString("direction") ?? "Right"
        guard direction == "Right" || direction == "Left" else {
            throw ModelError.unsupported(file: node.file, key: node.path + ".direction", value: direction)
        }
        fromLeft = direction == "Left"
    }

    init(maxLength: Int, fromLeft: Bool = false) {
        self.maxLength = maxLength
        self.fromLeft = fromLeft
    }

    func truncate(_ ids: [Int], reserve: Int) -> [Int] {
        let limit = max(0, maxLength - reserve)
        guard ids.count > limit else { return ids }
        return fromLeft ? Array(ids.suffix(limit)) : Array(ids.prefix(limit))
    }
}

/// tokenizer.json's `padding` (single sequence: `Fixed` length, or the sequence's own
/// length for `BatchLongest`, rounded up to `pad_to_multiple_of`).
struct PaddingParams: Sendable {
    let fixedLength: Int?
    let multipleOf: Int?
    let padId: Int
    let onLeft: Bool

    /// Longer than any model's context by far; a larger length would only allocate.
    static let maxLength = 1 << 20

    init(_ node: TokenizerJSON) throws {
        if let strategy = try node.child("strategy"), let o = strategy.value as? [String: Any], o["Fixed"] != nil {
            let fixed = try strategy.int("Fixed")
            guard (0...Self.maxLength).contains(fixed) else {
                throw try strategy.required("Fixed").error("padded length must be 0…\(Self.maxLength), is \(fixed)")
            }
            fixedLength = fixed
        } else {
            fixedLength = nil
        }
        multipleOf = try node.optionalInt("pad_to_multiple_of")
        if let m = multipleOf, !(0...Self.maxLength).contains(m) {
            throw try node.required("pad_to_multiple_of").error("must be 0…\(Self.maxLength), is \(m)")
        }
        padId = try node.optionalInt("pad_id") ?? 0
        onLeft = (try node.optionalString("direction")) == "Left"
    }

    func pad(_ ids: [Int]) -> [Int] {
        var target = fixedLength ?? ids.count
        if let m = multipleOf, m > 0, target % m != 0 { target += m - target % m }
        guard ids.count < target else { return ids }
        let fill = [Int](repeating: padId, count: target - ids.count)
        return onLeft ? fill + ids : ids + fill
    }
}
