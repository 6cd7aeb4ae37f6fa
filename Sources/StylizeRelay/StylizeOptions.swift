import ArgumentParser

/// The `stylize` element's properties as command-line options, with the element's names,
/// ranges and defaults (`gst-inspect-1.0 stylize`; RelayTests compares the defaults with
/// the element's own). `threads` and `stats` aside, all may change while streaming; the
/// relay changes `prompt` through its control endpoint.
public struct StylizeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Model folder (diffusers layout).",
                               discussion: "Default: the element's: $STYLIZE_MODEL_DIR, else the embedded models/nano of the tree the plugin was built in."),
            completion: .directory)
    public var model: String?

    @Option(help: "Style prompt. Empty: the model's default prompt. Change it while streaming with POST /prompt.")
    public var prompt: String = ""

    @Option(help: "Frames processed together (1-64). Larger batches raise throughput and add (batch-size - 1) frame durations of latency.")
    public var batchSize: UInt = 8

    @Option(help: "Milliseconds the oldest frame of a partial batch may wait before the batch runs anyway (0-60000, 0: off).")
    public var maxBatchWait: UInt = 0

    @Option(help: "Denoising steps per frame (1-8).")
    public var steps: UInt = 1

    @Option(help: "How far the output may move from the input (0-1).")
    public var strength: Float = 0.5

    @Option(help: "Seed of the noise generator.")
    public var seed: UInt64 = 0

    @Flag(inversion: .prefixedNo, help: "Use the same noise for every frame (temporal stability).")
    public var fixedNoise: Bool = true

    @Option(help: "Reuse the previous output when a frame differs from the last processed one by less than this (0-1, 0: off).")
    public var similaritySkip: Float = 0

    @Option(help: "Frames between re-encodings of the prompt with a fresh frame, for vision-aware encoders (0-10000, 0: only when the prompt changes).")
    public var refreshInterval: UInt = 30

    @Option(help: "CPU threads for the numeric work (0-64, 0: all cores).")
    public var threads: UInt = 0

    public init() {}

    public mutating func validate() throws {
        try Self.check(batchSize, in: 1...64, "--batch-size")
        try Self.check(maxBatchWait, in: 0...60000, "--max-batch-wait")
        try Self.check(steps, in: 1...8, "--steps")
        try Self.check(refreshInterval, in: 0...10000, "--refresh-interval")
        try Self.check(threads, in: 0...64, "--threads")
        guard (0...1).contains(strength) else { throw ValidationError("--strength must be within 0-1, not \(strength)") }
        guard (0...1).contains(similaritySkip) else {
            throw ValidationError("--similarity-skip must be within 0-1, not \(similaritySkip)")
        }
    }

    private static func check(_ v: UInt, in range: ClosedRange<UInt>, _ name: String) throws {
        guard range.contains(v) else {
            throw ValidationError("\(name) must be within \(range.lowerBound)-\(range.upperBound), not \(v)")
        }
    }

    /// Property name and value (as gst-launch writes it) for each property to set, in
    /// gst-inspect order; `model` only when given, so the element's default stays its own.
    public var properties: [(name: String, value: String)] {
        var p: [(String, String)] = []
        if let model { p.append(("model", model)) }
        p += [
            ("prompt", prompt),
            ("batch-size", String(batchSize)),
            ("steps", String(steps)),
            ("strength", String(strength)),
            ("seed", String(seed)),
            ("fixed-noise", fixedNoise ? "true" : "false"),
            ("refresh-interval", String(refreshInterval)),
            ("max-batch-wait", String(maxBatchWait)),
            ("similarity-skip", String(similaritySkip)),
            ("threads", String(threads)),
        ]
        return p
    }
}
