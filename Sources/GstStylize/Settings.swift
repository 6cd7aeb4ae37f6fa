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

    /// The default `model`: $STYLIZE_MODEL_DIR when set, else the embedded model folder
    /// `models/nano` of the source tree the plugin was built in. The plugin file lives in
    /// `<repo>/.build/release/`, a symlink to `<repo>/.build/<triple>/release/`, so the
    /// folder is two levels up from the path as loaded and three from the resolved one.
    /// The first candidate that exists wins; when none does (the model has not been
    /// added yet), the one inside a SwiftPM package root is reported.
    static func defaultModelPath() -> String {
        if let env = ProcessInfo.processInfo.environment["STYLIZE_MODEL_DIR"], !env.isEmpty {
            return env
        }
        guard let module = stylize_module_path() else { return "models/nano" }
        let loaded = URL(fileURLWithPath: String(cString: module))
        let resolved = loaded.resolvingSymlinksInPath()
        let candidates = [
            loaded.deletingLastPathComponent().appendingPathComponent("../../models/nano"),
            resolved.deletingLastPathComponent().appendingPathComponent("../../../models/nano"),
        ].map { $0.standardizedFileURL }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if let found = candidates.first(where: { fm.fileExists(atPath: $0.path, isDirectory: &isDir) && isDir.boolValue }) {
            return found.path
        }
        let inPackage = candidates.first {
            fm.fileExists(atPath: $0.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Package.swift").path)
        }
        return (inPackage ?? candidates[0]).path
    }
}
