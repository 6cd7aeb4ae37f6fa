import Foundation
import Synchronization
import StylizeModels

/// The fixed noise fields of one stream: one per (frame shape, seed, salt), where the
/// salt is the denoise step. Only the current frame shape and seed are kept: a field for
/// a seed or size no longer in use is never read again, and keeping every one would grow
/// by a latent per step for each seed a user tries. Thread-safe.
final class FixedNoiseCache: Sendable {
    struct Key: Hashable {
        let frameShape: [Int]
        let seed: UInt64
        let salt: Int
    }

    private let fields = Locked<[Key: Tensor]>([:])

    /// The field for `key`, made by `make` on first use. Making one for another shape or
    /// seed drops every field of the previous ones.
    func field(_ key: Key, make: () -> Tensor) -> Tensor {
        if let hit = fields.withLock({ $0[key] }) { return hit }
        // Made outside the lock: filling a latent takes a while, and two threads racing
        // here make the same deterministic field.
        let made = make()
        return fields.withLock { fields in
            if let raced = fields[key] { return raced }
            fields = fields.filter { $0.key.frameShape == key.frameShape && $0.key.seed == key.seed }
            fields[key] = made
            return made
        }
    }

    var count: Int { fields.withLock { $0.count } }
}
