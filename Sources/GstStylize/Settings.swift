import CShims
import Foundation
import StylizeEngine

/// The element's properties as one value (gst-plugins-rs style): read and written under
/// the element's settings lock, copied whole at each batch boundary.
struct Settings: Equatable {
    var model: String = Settings.defaultModelPath()
    var prompt: String = ""
    var batchSize: Int = Int(STYLIZE_BATCH_SIZE_DEFAULT)
    var steps: Int = Int(STYLIZE_STEPS_DEFAULT)
    var strength: Float = Float(STYLIZE_STRENGTH_DEFAULT)
    var seed: UInt64 = UInt64(STYLIZE_SEED_DEFAULT)
    var fixedNoise: Bool = true
    var refreshInterval: Int = Int(STYLIZE_REFRESH_INTERVAL_DEFAULT)
    /// Milliseconds; 0 = off.
    var maxBatchWait: Int = Int(STYLIZE_MAX_BATCH_WAIT_DEFAULT)
    var similaritySkip: Float = Float(STYLIZE_SIMILARITY_SKIP_DEFAULT)
    /// 0 = all cores (the engine's default).
    var threads: Int = Int(STYLIZE_THREADS_DEFAULT)

    /// What the engine sees of them.
    var engine: StylizeSettings {
        var s = StylizeSettings()
        s.prompt = prompt
        s.steps = steps
        s.strength = strength
        s.seed = seed
        s.fixedNoise = fixedNoise
        s.refreshInterval = refreshInterval
        s.similaritySkip = similaritySkip
        return s
    }

    var maxBatchWaitSeconds: TimeInterval? { maxBatchWait > 0 ? Double(maxBatchWait) / 1000 : nil }

    /// The default `model` (DefaultModel.swift says where it is looked for).
    static func defaultModelPath() -> String { DefaultModel.current.path() }
}
