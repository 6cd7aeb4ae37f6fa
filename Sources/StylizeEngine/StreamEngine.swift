import Foundation
import StylizeModels

/// The element's per-stream settings that reach the engine: a value copied under the
/// element's lock at each batch boundary, so property writes never race a batch.
public struct StylizeSettings: Sendable, Equatable {
    public var prompt: String = ""
    public var steps: Int = 1
    public var strength: Float = 0.5
    public var seed: UInt64 = 0
    public var fixedNoise: Bool = true
    /// Frames between vision-aware conditioning refreshes (0: only on prompt changes).
    public var refreshInterval: Int = 30
    /// 0 disables; otherwise the mean absolute difference (on a 0–1 scale) below which a
    /// frame reuses the previous output.
    public var similaritySkip: Float = 0

    public init() {}
}

/// One stream's engine as the element drives it. A GStreamer-free facade: an app can
/// use it alone. All methods are thread-safe.
public protocol StreamEngine: AnyObject {
    /// Starts the side (conditioning) thread for `settings.prompt`.
    func start(settings: StylizeSettings) throws
    /// Stops every thread the engine started; safe to call twice.
    func stop()
    /// Stores the prompt and wakes the side thread; returns at once.
    func setPrompt(_ prompt: String)
    /// NHWC [B, H, W, 3] in [-1, 1] → the restyled batch, same shape. Blocks only for the
    /// very first conditioning of the stream.
    func process(_ frames: Tensor, settings: StylizeSettings) throws -> Tensor
    var statistics: StreamStatistics { get }
    /// Longest batch time seen (seconds), for the LATENCY answer.
    var worstBatchSeconds: Double { get }
    /// Called (from the side thread) when a prompt's conditioning becomes active.
    var onConditioningActivated: ((String, Double) -> Void)? { get set }
    /// Called (from the side thread) when conditioning fails.
    var onError: ((Error) -> Void)? { get set }
}

/// How the element obtains an engine for its `model` property. The engine library installs
/// the real loader (shared per folder); tests linking the element in-process may replace it.
public enum StreamEngineFactory {
    nonisolated(unsafe) public static var make: (String) throws -> StreamEngine = { path in
        throw ModelError.fileNotFound(path: path, what: "stylize model folder (engine loader not installed)")
    }
}
