import Foundation
import Synchronization
import StylizeModels
import StylizeProperties

/// The element's per-stream settings that reach the engine: a value copied under the
/// element's lock at each batch boundary, so property writes never race a batch.
public struct StylizeSettings: Sendable, Equatable {
    public var prompt: String = ""
    public var steps: Int = ElementProperty.steps.defaultInt
    public var strength: Float = ElementProperty.strength.defaultFloat
    public var seed: UInt64 = 0
    public var fixedNoise: Bool = true
    /// Frames between vision-aware conditioning refreshes (0: only on prompt changes).
    public var refreshInterval: Int = ElementProperty.refreshInterval.defaultInt
    /// 0 disables; otherwise the mean absolute difference (on a 0–1 scale) below which a
    /// frame reuses the previous output.
    public var similaritySkip: Float = ElementProperty.similaritySkip.defaultFloat
    /// The control adapter ("" none; see `StylizeModel.controlLocation`).
    public var control: String = ""
    public var controlStrength: Float = ElementProperty.controlStrength.defaultFloat
    public var controlRefreshInterval: Int = ElementProperty.controlRefreshInterval.defaultInt
    /// Whether the model's temporal adapter (stylize.json "temporal") runs, when it has one.
    public var temporal: Bool = true
    /// Linear scale of the resolution the model runs at (1: the frame's own).
    public var workingScale: Float = ElementProperty.workingScale.defaultFloat

    public init() {}

    /// The element's settings as the engine sees them; properties marked `modelDefault`
    /// that were never set take `model`'s values (stylize.json).
    public init(_ s: ElementSettings, model: StylizeSettings) {
        prompt = s.string(.prompt)
        steps = s.explicitlySet.contains(.steps) ? s.int(.steps) : model.steps
        strength = s.explicitlySet.contains(.strength) ? s.float(.strength) : model.strength
        seed = s.uint64(.seed)
        fixedNoise = s.bool(.fixedNoise)
        refreshInterval = s.int(.refreshInterval)
        similaritySkip = s.float(.similaritySkip)
        control = s.explicitlySet.contains(.control) ? s.string(.control) : model.control
        controlStrength = s.explicitlySet.contains(.controlStrength) ? s.float(.controlStrength) : model.controlStrength
        controlRefreshInterval = s.explicitlySet.contains(.controlRefreshInterval)
            ? s.int(.controlRefreshInterval) : model.controlRefreshInterval
        temporal = s.bool(.temporal)
        workingScale = s.explicitlySet.contains(.workingScale) ? s.float(.workingScale) : model.workingScale
    }

    /// A `modelDefault` property's value in these settings (what reading it gives).
    public func value(of p: ElementProperty) -> PropertyValue? {
        switch p {
        case .steps: return .uint(UInt32(steps))
        case .strength: return .float(strength)
        case .control: return .string(control)
        case .controlStrength: return .float(controlStrength)
        case .controlRefreshInterval: return .uint(UInt32(controlRefreshInterval))
        case .workingScale: return .float(workingScale)
        default: return nil
        }
    }
}

/// One stream's engine as the element drives it. A GStreamer-free facade: an app can
/// use it alone. All methods are thread-safe.
public protocol StreamEngine: AnyObject, Sendable {
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
    /// The model's own settings (stylize.json's steps and strength, else the table's
    /// defaults), for the properties a user left unset.
    var modelDefaults: StylizeSettings { get }
    /// Longest batch time seen (seconds), for the LATENCY answer.
    var worstBatchSeconds: Double { get }
    /// Called (from the side thread) when a prompt's conditioning becomes active.
    var onConditioningActivated: (@Sendable (String, Double) -> Void)? { get set }
    /// Called (from the side thread) when conditioning fails.
    var onError: (@Sendable (Error) -> Void)? { get set }
    /// Called when the control adapter changes at a batch, or fails to load (the stream
    /// then runs without one).
    var onControlEvent: (@Sendable (ControlEvent) -> Void)? { get set }
    /// The stream jumped (flush, seek, caps change): frames from now on do not follow the
    /// ones before, so what was kept from those (the temporal adapter's previous output,
    /// the similarity-skip reference) is dropped. The element calls it, in order with the
    /// frames, at every SEGMENT and CAPS event.
    func discontinuity()
}

extension StreamEngine {
    public func discontinuity() {}
}

/// What an engine is made from: the `model` property's folder and where its prompts are
/// encoded (`conditioning-server`, `conditioning-model`; "" = locally / the folder's name).
public struct EngineSource: Sendable, Equatable {
    public var modelPath: String
    public var conditioningServer: String
    public var conditioningModel: String

    public init(modelPath: String, conditioningServer: String = "", conditioningModel: String = "") {
        self.modelPath = modelPath
        self.conditioningServer = conditioningServer
        self.conditioningModel = conditioningModel
    }
}

/// How the element obtains an engine for its `model` property. The engine library installs
/// the real loader (shared per folder); tests linking the element in-process may replace it.
public enum StreamEngineFactory {
    public typealias Loader = @Sendable (EngineSource) throws -> StreamEngine

    public static var make: Loader {
        get { loader.withLock { $0 } }
        set { loader.withLock { $0 = newValue } }
    }

    private static let loader = Locked<Loader> { source in
        throw ModelError.fileNotFound(path: source.modelPath, what: "stylize model folder (engine loader not installed)")
    }
}
