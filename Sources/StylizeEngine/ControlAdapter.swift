import Foundation
import StylizeModels

/// A control adapter loaded for a model, with the spec it is applied with.
public struct LoadedControl: Sendable {
    /// The `control` setting it was loaded for.
    public let setting: String
    public let path: String
    public let adapter: ControlNetLLLite
    public let spec: ControlSpec
}

/// What happened to a stream's control adapter (posted as element messages / errors).
public enum ControlEvent: Sendable, Equatable {
    /// The adapter at `path` conditions frames from stream position `frame` on.
    case activated(path: String, frame: Int)
    /// No adapter from stream position `frame` on.
    case removed(frame: Int)
    /// The file could not be loaded; the stream runs without an adapter.
    case failed(path: String, message: String)
}

extension StylizeModel {
    /// Where the `control` setting points: "" is none; the model's own adapter by its
    /// name or weights path; a file in the folder's controlnet_lllite/ by name (with or
    /// without .safetensors); else a path. A file that is not the model's own takes the
    /// model's spec (blocks, image, refresh) when it has one, else the defaults.
    public func controlLocation(_ setting: String) -> (path: String, spec: ControlSpec)? {
        guard !setting.isEmpty else { return nil }
        func inFolder(_ p: String) -> String { p.hasPrefix("/") ? p : (path as NSString).appendingPathComponent(p) }
        if let spec = config.control, setting == spec.name || setting == spec.weights {
            return (inFolder(spec.weights), spec)
        }
        var spec = config.control ?? ControlSpec(weights: setting)
        let fm = FileManager.default
        let named = ["controlnet_lllite/\(setting)", "controlnet_lllite/\(setting).safetensors"].map(inFolder)
        let file = named.first { fm.fileExists(atPath: $0) } ?? setting
        spec.weights = file
        return (file, spec)
    }

    /// The model's temporal adapter (stylize.json "temporal") when `setting` is not "".
    public func temporalLocation(_ setting: String) -> (path: String, spec: ControlSpec)? {
        guard !setting.isEmpty, let spec = config.temporal else { return nil }
        return (spec.weights.hasPrefix("/") ? spec.weights : (path as NSString).appendingPathComponent(spec.weights), spec)
    }

    /// Loads the adapter the setting names (nil for ""), validated against this model.
    public func loadControl(_ setting: String) throws -> LoadedControl? {
        try loadAdapter(setting, at: controlLocation(setting))
    }

    func loadAdapter(_ setting: String, at location: (path: String, spec: ControlSpec)?) throws -> LoadedControl? {
        guard let (file, spec) = location else { return nil }
        let adapter = try ControlNetLLLite(file: file, denoiser: denoiser, imageDownscale: codec.downscale, blocks: spec.blocks)
        return LoadedControl(setting: setting, path: file, adapter: adapter, spec: spec)
    }
}

/// Which of a stream's adapters a `ControlState` holds: the `control` property's, or the
/// model's temporal adapter (switched by the `temporal` property).
enum ControlSlot: Sendable {
    case control, temporal
}

/// One stream's control adapter: loads a changed `control` setting on a background
/// thread and switches at a batch boundary (as a `model` change does), and keeps the
/// conditioning network's output, re-computing it every `control-refresh-interval`
/// batches (docs/ARCHITECTURE.md#control-adapters). Thread-safe.
final class ControlState: @unchecked Sendable {
    private let model: StylizeModel
    let slot: ControlSlot
    private let lock = NSLock()
    /// The setting last asked for, and the load that belongs to it.
    private var requested = ""
    private var generation = 0
    private var current: LoadedControl?
    /// A finished load waiting for the next batch (`.some(nil)`: switch to none).
    private var pending: LoadedControl??
    // Conditioning kept between refreshes; touched only by the batch (worker) thread.
    private var conditioning: LLLiteConditioning?
    private var hooks: (multiplier: Float, hooks: LinearInputHooks)?
    private var batchesSinceRefresh = 0
    /// The padded frame size the kept conditioning was computed at.
    private var conditionedSize = (height: 0, width: 0)
    /// The `previous-output` source: the last output and input, and their warp.
    private var warp = PreviousOutputWarp()
    /// The batch's newest padded input, kept until its output arrives.
    private var newestInput: Tensor?

    var onEvent: (@Sendable (ControlEvent) -> Void)?

    init(model: StylizeModel, slot: ControlSlot = .control) {
        self.model = model
        self.slot = slot
    }

    private func location(_ setting: String) -> (path: String, spec: ControlSpec)? {
        switch slot {
        case .control: model.controlLocation(setting)
        case .temporal: model.temporalLocation(setting)
        }
    }

    /// The setting of this batch. A new one loads in the background (at once when
    /// `synchronously`, for a stream's first batch) and is used from a later batch.
    func request(_ setting: String, synchronously: Bool) {
        let load = lock.withLock { () -> Int? in
            guard setting != requested else { return nil }
            requested = setting
            generation += 1
            return generation
        }
        guard let load else { return }
        let work: @Sendable () -> Void = { [self] in
            let result: LoadedControl?
            do {
                result = try model.loadAdapter(setting, at: location(setting))
            } catch {
                let path = location(setting)?.path ?? setting
                let message = "\(error)"
                lock.withLock { if load == generation { pending = .some(nil) } }
                onEvent?(.failed(path: path, message: message))
                return
            }
            lock.withLock { if load == generation { pending = .some(result) } }
        }
        if synchronously {
            work()
        } else {
            let t = Thread(block: work)
            t.name = "stylize-control-load"
            t.start()
        }
    }

    /// A restarted stream: keeps the adapter, forgets the conditioning and the previous output.
    func resetStream() {
        lock.withLock {
            conditioning = nil
            hooks = nil
            warp.reset()
            newestInput = nil
        }
    }

    /// Adopts a finished load at this batch boundary; the adapter the batch uses.
    func adapterForBatch(firstFrame: Int) -> LoadedControl? {
        let (now, changed) = lock.withLock { () -> (LoadedControl?, Bool) in
            guard let p = pending else { return (current, false) }
            pending = nil
            current = p
            conditioning = nil
            hooks = nil
            return (p, true)
        }
        if changed { onEvent?(now.map { .activated(path: $0.path, frame: firstFrame) } ?? .removed(frame: firstFrame)) }
        return now
    }

    /// The hooks for this batch, re-running the conditioning network when the refresh is
    /// due: every `refreshInterval` batches from the batch's newest frame (shared by all its
    /// frames and the following batches), or with an interval of 1 from every frame.
    /// - Parameter padded: the batch's frames at the model's padded size, NHWC [-1, 1].
    func hooks(for control: LoadedControl, padded: Tensor, latentHeight: Int, latentWidth: Int,
               strength: Float, refreshInterval: Int) throws -> LinearInputHooks? {
        guard strength > 0 else { return nil }
        if control.spec.image == .previousOutput { newestInput = padded.batchItems([padded.n - 1]) }
        let perFrame = refreshInterval <= 1
        if conditioning == nil || conditionedSize.height != padded.h || conditionedSize.width != padded.w
            || batchesSinceRefresh >= max(1, refreshInterval)
            || (perFrame && conditioning!.batch != padded.n) {
            // The old terms go back to the pool first, so a refresh reuses their buffers.
            conditioning = nil
            hooks = nil
            let images = try controlImages(control.spec, padded: padded, perFrame: perFrame)
            conditioning = try control.adapter.condition(images: images, latentHeight: latentHeight, latentWidth: latentWidth)
            conditionedSize = (padded.h, padded.w)
            hooks = nil
            batchesSinceRefresh = 0
        }
        batchesSinceRefresh += 1
        if let h = hooks, h.multiplier == strength { return h.hooks }
        let made = conditioning!.hooks(multiplier: strength)
        hooks = (strength, made)
        return made
    }

    /// Keeps the batch's newest output frame (working size, [1, h, w, C]: RGB and the
    /// decoder's output) and its input for the `previous-output` source.
    func finished(output: Tensor, decoded: Tensor, frame: Tensor?) {
        guard let input = newestInput else { return }
        newestInput = nil
        warp.keep(input: input, output: output, decoded: decoded, frame: frame)
    }

    /// The temporal blend (`ControlSpec.blend`) of this batch's decoder output.
    func blend(_ decoded: inout Tensor, alpha: Float) {
        warp.blend(&decoded, alpha: alpha)
    }

    /// The same blend on the batch's output at the frame's size.
    func blend(output: inout Tensor, alpha: Float, workingHeight: Int, workingWidth: Int) {
        warp.blend(output: &output, alpha: alpha, workingHeight: workingHeight, workingWidth: workingWidth)
    }

    private func controlImages(_ spec: ControlSpec, padded: Tensor, perFrame: Bool) throws -> Tensor {
        let frames = perFrame ? padded : padded.batchItems([padded.n - 1])
        switch spec.image {
        case .frame: return frames
        case .edges: return edgeMap(frames, settings: spec.edges)
        case .previousOutput:
            // A stream's first batch (or one after a size change) has no previous output
            // and falls back to the frames.
            return warp.images(for: frames)
        }
    }

}

/// A stream's control adapter as one batch applies it.
struct ControlBatch: BatchAdapters {
    let state: ControlState
    let control: LoadedControl
    let strength: Float
    let refreshInterval: Int

    func hooks(padded: Tensor, latentHeight: Int, latentWidth: Int) throws -> LinearInputHooks? {
        try state.hooks(for: control, padded: padded, latentHeight: latentHeight, latentWidth: latentWidth,
                        strength: strength, refreshInterval: refreshInterval)
    }

    var wantsOutput: Bool { control.spec.image == .previousOutput }
    func output(_ rgb: Tensor, decoded: Tensor, frame: Tensor?) { state.finished(output: rgb, decoded: decoded, frame: frame) }
    func adjust(decoded: inout Tensor) {
        if control.spec.image == .previousOutput { state.blend(&decoded, alpha: control.spec.blend) }
    }
    func adjust(output: inout Tensor, workingHeight: Int, workingWidth: Int) {
        if control.spec.image == .previousOutput {
            state.blend(output: &output, alpha: control.spec.blend, workingHeight: workingHeight, workingWidth: workingWidth)
        }
    }
}

/// Two adapters on one batch (the control adapter and the temporal one). Where both hook
/// the same Linear, the second adjusts the input the first has adjusted, as sd-scripts
/// chains LLLite modules that wrap the same projection.
struct AdapterStack: BatchAdapters {
    let first: any BatchAdapters
    let second: any BatchAdapters

    /// The batch's adapters: none, one, or both stacked.
    static func of(_ a: (any BatchAdapters)?, _ b: (any BatchAdapters)?) -> (any BatchAdapters)? {
        guard let a else { return b }
        guard let b else { return a }
        return AdapterStack(first: a, second: b)
    }

    func hooks(padded: Tensor, latentHeight: Int, latentWidth: Int) throws -> LinearInputHooks? {
        let a = try first.hooks(padded: padded, latentHeight: latentHeight, latentWidth: latentWidth)
        let b = try second.hooks(padded: padded, latentHeight: latentHeight, latentWidth: latentWidth)
        guard let a else { return b }
        guard let b else { return a }
        return a.chained(with: b)
    }

    var wantsOutput: Bool { first.wantsOutput || second.wantsOutput }

    func output(_ rgb: Tensor, decoded: Tensor, frame: Tensor?) {
        if first.wantsOutput { first.output(rgb, decoded: decoded, frame: frame) }
        if second.wantsOutput { second.output(rgb, decoded: decoded, frame: frame) }
    }

    func adjust(decoded: inout Tensor) {
        first.adjust(decoded: &decoded)
        second.adjust(decoded: &decoded)
    }

    func adjust(output: inout Tensor, workingHeight: Int, workingWidth: Int) {
        first.adjust(output: &output, workingHeight: workingHeight, workingWidth: workingWidth)
        second.adjust(output: &output, workingHeight: workingHeight, workingWidth: workingWidth)
    }
}
