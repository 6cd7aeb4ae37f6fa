import Foundation
import StylizeModels

extension ConditioningEncoder: ConditioningBackend {
    public var seesImages: Bool { encoder.acceptsImages }

    public func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
        let batch: Tensor = try encode(prompts: prompts, frames: frames)   // [B, T, D]
        let per = batch.count / max(1, batch.shape[0])
        return (0..<batch.shape[0]).map { Tensor(shape: Array(batch.shape.dropFirst()), data: Array(batch.data[($0 * per)..<(($0 + 1) * per)])) }
    }
}

/// One stream's engine: the shared model, this stream's conditioning side thread, the
/// denoise loop, similarity skipping and statistics. GStreamer-free; the element and
/// apps drive it through `StreamEngine`.
// Safe: its vars are guarded by `lock`, `promptLock` (arbiter) or `callbackLock` (callbacks).
public final class StylizeEngine: StreamEngine, @unchecked Sendable {
    public let model: StylizeModel
    public let statistics = StreamStatistics()
    /// Read by the side thread while the element may reset them: kept under their own
    /// lock (never the engine's, which start() holds while the old side thread may call).
    public var onConditioningActivated: (@Sendable (String, Double) -> Void)? {
        get { callbackLock.withLock { _onActivated } }
        set { callbackLock.withLock { _onActivated = newValue } }
    }
    public var onError: (@Sendable (Error) -> Void)? {
        get { callbackLock.withLock { _onError } }
        set { callbackLock.withLock { _onError = newValue } }
    }
    public var onControlEvent: (@Sendable (ControlEvent) -> Void)? {
        get { callbackLock.withLock { _onControlEvent } }
        set { callbackLock.withLock { _onControlEvent = newValue } }
    }
    private let callbackLock = NSLock()
    private var _onActivated: (@Sendable (String, Double) -> Void)?
    private var _onError: (@Sendable (Error) -> Void)?
    private var _onControlEvent: (@Sendable (ControlEvent) -> Void)?
    /// This stream's control adapter and its kept conditioning.
    private let control: ControlState
    /// The model's temporal adapter, when it has one, and its previous output.
    private let temporal: ControlState

    /// Orders every prompt change that reaches the side thread (setPrompt, a batch's
    /// settings, start), so the last one decided is the last one applied.
    private let promptLock = NSLock()
    private var arbiter = PromptArbiter()   // guarded by promptLock

    private let lock = NSLock()
    private let stylizer: Stylizer
    private var service: ConditioningService?
    private var frameCounter = 0
    // Input and output of the last computed frame (similarity skip's reference).
    private var previousInput: Tensor?
    private var previousOutput: Tensor?
    private var _worst: Double = 0
    /// The prompt of the conditioning the last batch used.
    private var lastPrompt: String?

    /// Encodes prompts; the model's own encoder unless the caller supplies another
    /// (a remote encoder, or a deliberately slow one in tests).
    private let backend: ConditioningBackend

    public init(model: StylizeModel, conditioningBackend: ConditioningBackend? = nil) {
        self.model = model
        self.stylizer = Stylizer(model: model)
        self.backend = conditioningBackend ?? model.conditioning
        self.control = ControlState(model: model)
        self.temporal = ControlState(model: model, slot: .temporal)
        control.onEvent = { [weak self] event in self?.onControlEvent?(event) }
        // The temporal adapter is the model's own, switched by a boolean: only its failure
        // to load is news (an error naming the file).
        temporal.onEvent = { [weak self] event in
            if case .failed = event { self?.onControlEvent?(event) }
        }
    }

    /// Loads (or shares) the model folder at `path`.
    public convenience init(modelPath: String) throws {
        self.init(model: try ModelRegistry.model(at: modelPath))
    }

    /// Loads (or shares) the model folder, with its prompts encoded locally or, for a
    /// `conditioningServer`, by that Open Inference Protocol server.
    public convenience init(source: EngineSource) throws {
        guard !source.conditioningServer.isEmpty else {
            self.init(model: try ModelRegistry.model(at: source.modelPath))
            return
        }
        guard let url = URL(string: source.conditioningServer), url.scheme?.lowercased() == "http", url.host != nil else {
            throw ModelError.invalidInput(name: "conditioning-server",
                                          reason: "'\(source.conditioningServer)' is not an http:// URL (https: put TLS in a sidecar)")
        }
        // The encoder runs on the server: its weights are not loaded here.
        let model = try ModelRegistry.model(at: source.modelPath, encoderWeights: false)
        let name = source.conditioningModel.isEmpty
            ? URL(fileURLWithPath: model.path).standardizedFileURL.lastPathComponent : source.conditioningModel
        let client = OpenInferenceClient(server: url, model: name)
        self.init(model: model, conditioningBackend: RemoteConditioningBackend(client: client, encoder: model.conditioning))
    }

    /// Installs this engine as the element's loader.
    public static func installAsDefaultFactory() {
        StreamEngineFactory.make = { try StylizeEngine(source: $0) }
    }

    public var worstBatchSeconds: Double { lock.withLock { _worst } }

    public var modelDefaults: StylizeSettings {
        var s = StylizeSettings()
        s.steps = model.config.steps
        s.strength = model.config.strength
        s.workingScale = model.config.working.scale
        if let c = model.config.control {
            s.control = c.weights
            s.controlStrength = c.multiplier
            s.controlRefreshInterval = c.refreshInterval
        }
        return s
    }

    /// Time per stage of the denoise loop so far (autoencoder, U-Net, padding/noise).
    public var stageTimes: Stylizer.StageTimes { stylizer.stageTimes }

    /// For stills (stylize-tool): processes `frames` once the conditioning of
    /// `settings.prompt` is active, instead of with the previous prompt's while it encodes.
    public static func processWaitingForPrompt(_ engine: StylizeEngine, _ frames: Tensor, settings: StylizeSettings,
                                               timeout: TimeInterval = 600) throws -> Tensor {
        let wanted = engine.resolved(settings.prompt)
        // A still follows nothing: no temporal state from earlier calls or from the pass
        // that requests the prompt.
        engine.discontinuity()
        // Already active before the pass starts: this pass uses it.
        if engine.lock.withLock({ engine.service })?.current()?.prompt == wanted {
            return try engine.process(frames, settings: settings)
        }
        // One pass offers the frame (vision-aware encoders need it) and requests the prompt.
        // Its output is never returned: the prompt may become active while it runs, after
        // the pass has taken the previous conditioning.
        let first = try engine.process(frames, settings: settings)
        guard let service = engine.lock.withLock({ engine.service }) else { return first }
        let deadline = Date(timeIntervalSinceNow: timeout)
        while service.current()?.prompt != wanted {
            guard Date() < deadline else {
                throw ModelError.invalidInput(name: "prompt", reason: "'\(wanted)' was not encoded within \(Int(timeout)) s")
            }
            Thread.sleep(forTimeInterval: 0.005)
        }
        engine.discontinuity()
        return try engine.process(frames, settings: settings)
    }

    public func start(settings: StylizeSettings) throws {
        // The adapter a stream starts with applies from its first frame.
        control.resetStream()
        control.request(settings.control, synchronously: true)
        temporal.resetStream()
        temporal.request(temporalSetting(settings), synchronously: true)
        let s = ConditioningService(backend: backend, modelID: model.path, prompt: resolved(settings.prompt),
                                    refreshInterval: settings.refreshInterval)
        s.onActivated = { [weak self] p, seconds in
            self?.statistics.encoderRan(seconds: seconds)
            self?.onConditioningActivated?(p, seconds)
        }
        s.onError = { [weak self] e in self?.onError?(e) }
        let old = promptLock.withLock { () -> ConditioningService? in
            arbiter.started()
            s.start()
            return lock.withLock {
                defer {
                    service = s
                    frameCounter = 0
                    previousInput = nil
                    previousOutput = nil
                }
                return service
            }
        }
        // Outside the locks: stop() waits for the old side thread, whose callbacks may
        // still be running.
        old?.stop()
    }

    /// The temporal slot's setting: the model's adapter when it has one and `temporal` is on.
    private func temporalSetting(_ settings: StylizeSettings) -> String {
        settings.temporal ? model.config.temporal?.weights ?? "" : ""
    }

    public func discontinuity() {
        control.resetStream()
        temporal.resetStream()
        lock.withLock {
            previousInput = nil
            previousOutput = nil
        }
    }

    /// Stops the side thread and waits for it: no callback arrives once this returns.
    public func stop() {
        let s = lock.withLock { () -> ConditioningService? in
            defer { service = nil }
            return service
        }
        s?.stop()
    }

    public func setPrompt(_ prompt: String) {
        promptLock.withLock {
            arbiter.explicitlySet()
            lock.withLock { service }?.setPrompt(resolved(prompt))
        }
    }

    /// The prompt whose conditioning the next batch uses (nil before the first is ready).
    var currentPrompt: String? { lock.withLock { service }?.current()?.prompt }

    /// What the side thread encodes for a requested prompt: the model's default for "",
    /// and never more than `ConditioningService.maxPromptBytes`.
    func resolved(_ prompt: String) -> String {
        ConditioningService.truncated(prompt.isEmpty ? model.config.defaultPrompt : prompt)
    }

    public func process(_ frames: Tensor, settings: StylizeSettings) throws -> Tensor {
        let t0 = StreamStatistics.now()
        guard let service = lock.withLock({ service }) else {
            throw ModelError.invalidInput(name: "engine", reason: "process() called before start()")
        }
        let b = frames.n
        let perFrame = frames.count / max(1, b)
        let first = lock.withLock { () -> Int in defer { frameCounter += b }; return frameCounter }
        if service.refreshInterval != settings.refreshInterval { service.refreshInterval = settings.refreshInterval }
        promptLock.withLock {
            let wanted = resolved(settings.prompt)
            if arbiter.batchMayApplySettings(), service.prompt != wanted { service.setPrompt(wanted) }
        }
        control.request(settings.control, synchronously: false)
        temporal.request(temporalSetting(settings), synchronously: false)
        let controlBatch = control.adapterForBatch(firstFrame: first).map {
            ControlBatch(state: control, control: $0, strength: settings.controlStrength,
                         refreshInterval: settings.controlRefreshInterval)
        }
        let temporalBatch = temporal.adapterForBatch(firstFrame: first).map {
            ControlBatch(state: temporal, control: $0, strength: $0.spec.multiplier, refreshInterval: $0.spec.refreshInterval)
        }
        let adapters = AdapterStack.of(controlBatch, temporalBatch)
        // Vision-aware encoders see the newest frame of the batch.
        service.offerFrame(RGBImage(tensor: frames, index: b - 1), index: first + b - 1)
        guard let conditioning = try service.current() ?? service.waitForFirst() else {
            throw ModelError.invalidInput(name: "prompt", reason: "no conditioning is available")
        }
        // A new prompt is a new style: the temporal adapter must not pull the first frames
        // towards the previous style's output (a vision refresh of the same prompt is not).
        let promptChanged = lock.withLock { () -> Bool in
            defer { lastPrompt = conditioning.prompt }
            return lastPrompt != nil && lastPrompt != conditioning.prompt
        }
        if promptChanged { temporal.resetStream() }

        // Similarity skip: a frame nearly identical to the last frame that was computed
        // reuses that frame's output (comparing with the computed frame, not merely the
        // previous one, keeps slow drifts from accumulating).
        guard settings.similaritySkip > 0 else {
            // The common case: no per-frame copies, the batch goes straight through.
            let out = try stylizer.process(frames, conditioning: conditioning.tensor, settings: settings,
                                           frameIndices: (0..<b).map { first + $0 }, adapters: adapters)
            finishBatch(started: t0, frames: b, skipped: 0, reference: (nil, nil))
            return out
        }
        var reference = lock.withLock { (input: previousInput, output: previousOutput) }
        var source = [Int?](repeating: nil, count: b)     // computed frame whose output frame i takes
        var compute: [Int] = []
        var referenceIsPrevious = reference.output != nil   // the reference is from an earlier batch
        var referenceIndex: Int? = nil
        for i in 0..<b {
            let frame = frames.data[(i * perFrame)..<((i + 1) * perFrame)]
            if settings.similaritySkip > 0, let r = reference.input, r.count == perFrame,
               referenceIsPrevious || referenceIndex != nil,
               meanAbsDifference(frame, r.data) / 2 < settings.similaritySkip {
                source[i] = referenceIndex   // nil: the previous batch's output
            } else {
                compute.append(i)
                source[i] = i
                referenceIndex = i
                referenceIsPrevious = false
                reference.input = Tensor(shape: [perFrame], data: TensorBuffer(frame))
            }
        }
        var out = Tensor(uninitialized: frames.shape)
        if !compute.isEmpty {
            var batch = Tensor(uninitialized: [compute.count, frames.h, frames.w, frames.c])
            for (k, i) in compute.enumerated() {
                batch.data.replaceSubrange((k * perFrame)..<((k + 1) * perFrame), with: frames.data[(i * perFrame)..<((i + 1) * perFrame)])
            }
            let result = try stylizer.process(batch, conditioning: conditioning.tensor, settings: settings,
                                              frameIndices: compute.map { first + $0 }, adapters: adapters)
            for (k, i) in compute.enumerated() {
                out.data.replaceSubrange((i * perFrame)..<((i + 1) * perFrame), with: result.data[(k * perFrame)..<((k + 1) * perFrame)])
            }
        }
        // Skipped frames copy within `out` through its pointer: a slice of `out.data` as
        // the source would make the write copy the whole buffer first.
        let referenceOutput = reference.output
        out.data.withUnsafeMutableBufferPointer { o in
            for i in 0..<b where source[i] != i {
                let dst = o.baseAddress! + i * perFrame
                if let s = source[i] {
                    dst.update(from: o.baseAddress! + s * perFrame, count: perFrame)
                } else {
                    referenceOutput!.data.withUnsafeBufferPointer { dst.update(from: $0.baseAddress!, count: perFrame) }
                }
            }
        }
        if let last = compute.last {
            reference.output = Tensor(shape: [perFrame], data: TensorBuffer(out.data[(last * perFrame)..<((last + 1) * perFrame)]))
        }
        finishBatch(started: t0, frames: b, skipped: source.enumerated().filter { $0.element != $0.offset }.count,
                    reference: (reference.input, reference.output))
        return out
    }
}

extension StylizeEngine {
    /// Records the batch's time and keeps the similarity-skip reference for the next one.
    fileprivate func finishBatch(started t0: Double, frames b: Int, skipped: Int, reference: (Tensor?, Tensor?)) {
        let seconds = StreamStatistics.now() - t0
        lock.withLock {
            previousInput = reference.0
            previousOutput = reference.1
            _worst = max(_worst, seconds)
        }
        statistics.batchRan(seconds: seconds, frames: b, skipped: skipped)
    }
}

func meanAbsDifference(_ a: Slice<TensorBuffer>, _ b: TensorBuffer) -> Float {
    var s: Float = 0
    a.withContiguousStorageIfAvailable { pa in
        b.withUnsafeBufferPointer { pb in
            for i in 0..<min(pa.count, pb.count) { s += abs(pa[i] - pb[i]) }
        }
    }
    return s / Float(max(1, a.count))
}
