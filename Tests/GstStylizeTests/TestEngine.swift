import Foundation
import StylizeCore
import StylizeEngine
import StylizeModels

/// A stand-in for the real engine while the element is tested on its own: it inverts
/// colours (out = −in), can be slowed down per batch, reports a fixed worst batch time
/// (so the LATENCY answer is known exactly), activates prompts after a configurable
/// delay on a background thread (newest prompt wins, like ConditioningService), and
/// records what the element asked of it.
final class TestEngine: StreamEngine, @unchecked Sendable {
    struct Config {
        var batchDelay: TimeInterval = 0
        var conditioningDelay: TimeInterval = 0
        var reportedWorstBatch: Double = 0.02
        var failProcess = false
        /// The model's own steps and strength (stylize.json), for properties left unset.
        var modelSteps = 1
        var modelStrength: Float = 0.5
    }

    // What the factory makes; tests reset these in setUp.
    private static let registryLock = NSLock()
    nonisolated(unsafe) private static var _config = Config()
    nonisolated(unsafe) private static var _made: [TestEngine] = []
    static var config: Config {
        get { registryLock.withLock { _config } }
        set { registryLock.withLock { _config = newValue } }
    }
    static var made: [TestEngine] { registryLock.withLock { _made } }
    static var last: TestEngine? { made.last }

    /// Paths containing one of these fail to load, like a missing or corrupt folder.
    static let rejectedMarkers = ["nonexistent", "corrupt"]

    /// Replaces the element's engine loader with test engines. Until the real engine is
    /// linked into the element this is the only loader; to run the suite against the real
    /// engine, skip this (set STYLIZE_TEST_REAL_ENGINE=1).
    static func install() {
        registryLock.withLock {
            _config = Config()
            _made = []
        }
        if ProcessInfo.processInfo.environment["STYLIZE_TEST_REAL_ENGINE"] == "1" { return }
        StreamEngineFactory.make = { source in
            let path = source.modelPath
            if rejectedMarkers.contains(where: { path.contains($0) }) {
                throw ModelError.fileNotFound(path: path, what: "model_index.json")
            }
            let e = TestEngine(path: path, config: TestEngine.config)
            registryLock.withLock { _made.append(e) }
            return e
        }
    }

    static var isInstalled: Bool { ProcessInfo.processInfo.environment["STYLIZE_TEST_REAL_ENGINE"] != "1" }

    let path: String
    let config: Config
    let statistics = StreamStatistics()
    var onConditioningActivated: (@Sendable (String, Double) -> Void)? {
        get { lock.withLock { _onActivated } }
        set { lock.withLock { _onActivated = newValue } }
    }
    var onError: (@Sendable (Error) -> Void)?
    var onControlEvent: (@Sendable (ControlEvent) -> Void)?

    private let lock = NSLock()
    private var _onActivated: (@Sendable (String, Double) -> Void)?
    private var running = false
    private var generation = 0
    private var _batchShapes: [[Int]] = []
    private var _prompts: [String] = []
    private var _lastSettings: StylizeSettings?
    private var _lastThreads = 0
    private var _starts = 0
    private var _stops = 0
    private var _calls: [String] = []

    var batchShapes: [[Int]] { lock.withLock { _batchShapes } }
    var promptsSet: [String] { lock.withLock { _prompts } }
    var lastSettings: StylizeSettings? { lock.withLock { _lastSettings } }
    /// ThreadBudget.available inside the last process() call.
    var lastThreads: Int { lock.withLock { _lastThreads } }
    var starts: Int { lock.withLock { _starts } }
    var stops: Int { lock.withLock { _stops } }
    /// "batch N" per process() and "discontinuity" per discontinuity(), in call order.
    var calls: [String] { lock.withLock { _calls } }

    func discontinuity() { lock.withLock { _calls.append("discontinuity") } }
    var isRunning: Bool { lock.withLock { running } }

    init(path: String, config: Config) {
        self.path = path
        self.config = config
    }

    func start(settings: StylizeSettings) throws {
        lock.withLock {
            running = true
            _starts += 1
        }
        activate(settings.prompt)
    }

    func stop() {
        lock.withLock {
            if running { _stops += 1 }
            running = false
            generation += 1
        }
    }

    func setPrompt(_ prompt: String) {
        lock.withLock { _prompts.append(prompt) }
        activate(prompt)
    }

    private func activate(_ prompt: String) {
        let gen = lock.withLock { () -> Int in
            generation += 1
            return generation
        }
        let delay = config.conditioningDelay
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [weak self] in
            guard let self else { return }
            let cb = self.lock.withLock { () -> (@Sendable (String, Double) -> Void)? in
                self.running && gen == self.generation ? self._onActivated : nil
            }
            self.statistics.encoderRan(seconds: delay)
            cb?(prompt, delay)
        }
    }

    func process(_ frames: Tensor, settings: StylizeSettings) throws -> Tensor {
        guard frames.rank == 4, frames.c == 3, frames.n > 0 else {
            throw ModelError.invalidInput(name: "frames", reason: "expected [B, H, W, 3], got \(frames.shape)")
        }
        guard lock.withLock({ running }) else {
            throw ModelError.invalidInput(name: "engine", reason: "process() called before start()")
        }
        if config.failProcess { throw ModelError.invalidInput(name: "frames", reason: "test engine told to fail") }
        let t0 = StreamStatistics.now()
        if config.batchDelay > 0 { Thread.sleep(forTimeInterval: config.batchDelay) }
        lock.withLock {
            _batchShapes.append(frames.shape)
            _calls.append("batch \(frames.n)")
            _lastSettings = settings
            _lastThreads = ThreadBudget.available
        }
        let out = Tensor(shape: frames.shape, data: frames.data.map { -$0 })
        let seconds = StreamStatistics.now() - t0
        statistics.batchRan(seconds: seconds, frames: frames.n)
        return out
    }

    var worstBatchSeconds: Double { config.reportedWorstBatch }

    /// What stylize.json would give (TestEngine.Config.modelSteps / modelStrength).
    var modelDefaults: StylizeSettings {
        var s = StylizeSettings()
        s.steps = config.modelSteps
        s.strength = config.modelStrength
        return s
    }
}
