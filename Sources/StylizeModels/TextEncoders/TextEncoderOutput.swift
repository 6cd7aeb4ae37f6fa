import StylizeCore

/// What every text encoder returns: the final hidden state and all hidden states
/// (embeddings output first), as transformers' `output_hidden_states=True` does.
public struct TextEncoderOutput: Sendable {
    /// [B, T, D]
    public var lastHiddenState: Tensor
    /// L + 1 tensors of [B, T, D].
    public var hiddenStates: [Tensor]
    /// CLIP's pooled (EOS-token) state, [B, D].
    public var pooled: Tensor?

    /// hidden_states stacked to [L + 1, B, T, D] (the CLI's output format).
    public var stackedHiddenStates: Tensor {
        let shape = hiddenStates[0].shape
        return Tensor(shape: [hiddenStates.count] + shape, data: hiddenStates.flatMap(\.data))
    }
}

/// Token ids and mask for a batch, [B, T].
public struct TokenBatch: Sendable {
    public var ids: [[Int]]
    /// 1 keep, 0 padding; nil means all ones.
    public var attentionMask: [[Int]]?

    public init(ids: [[Int]], attentionMask: [[Int]]? = nil) {
        self.ids = ids
        self.attentionMask = attentionMask
    }

    public var batch: Int { ids.count }
    public var length: Int { ids.first?.count ?? 0 }

    /// Additive key bias [B, T]: 0 where kept, −∞ where padded.
    func keyBias() -> Tensor? {
        guard let mask = attentionMask, mask.contains(where: { $0.contains(0) }) else { return nil }
        return Tensor(shape: [batch, length], data: mask.flatMap { $0.map { $0 == 0 ? -Float.infinity : 0 } })
    }
}

/// Row lookup in an embedding table [vocab, dim].
func embeddingLookup(_ table: [Float], dim: Int, ids: [[Int]], name: String) throws -> Tensor {
    let vocab = table.count / dim
    let b = ids.count, t = ids.first?.count ?? 0
    var out = Tensor(uninitialized: [b, t, dim])
    for (bi, row) in ids.enumerated() {
        guard row.count == t else { throw ModelError.invalidInput(name: "input_ids", reason: "rows have different lengths") }
        for (ti, id) in row.enumerated() {
            guard id >= 0 && id < vocab else {
                throw ModelError.invalidInput(name: "input_ids", reason: "token id \(id) is outside \(name)'s vocabulary of \(vocab)")
            }
            for j in 0..<dim { out.data[(bi * t + ti) * dim + j] = table[id * dim + j] }
        }
    }
    return out
}
