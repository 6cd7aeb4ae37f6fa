import Foundation
import StylizeModels

/// What a control adapter's conditioning image is made from.
public enum ControlImageSource: String, Sendable, CaseIterable {
    /// The input frame itself, in [-1, 1].
    case frame
    /// A Canny-like edge map of the frame (`EdgeMap`): white edges on black.
    case edges
    /// The previous batch's newest output, warped onto each frame by optical flow, with the
    /// frame itself where the flow is occluded (`PreviousOutputWarp`; the temporal adapter's
    /// input). A stream's first batch has none and uses the frames.
    case previousOutput = "previous-output"
}

/// stylize.json's `control` object: the model's ControlNet-LLLite and how it is applied
/// (docs/ARCHITECTURE.md#control-adapters).
public struct ControlSpec: Sendable, Equatable {
    /// Weights file, relative to the model folder (e.g. "controlnet_lllite/edges.safetensors").
    public var weights: String
    /// A name the `control` property may use instead of the path.
    public var name: String?
    public var multiplier: Float = 1
    public var blocks: LLLiteBlocks = .down
    /// Batches between re-computations of the conditioning network.
    public var refreshInterval: Int = 8
    public var image: ControlImageSource = .frame
    public var edges = EdgeMapSettings()
    /// The temporal blend, for a `previous-output` adapter: where the flow is trusted, the
    /// decoder's output moves this fraction of the way to the warped previous one
    /// (0: off). Refreshed-every-batch adapters only (`refresh_interval` 1).
    public var blend: Float = 0

    public init(weights: String) { self.weights = weights }

    /// - Parameter temporal: stylize.json's `temporal` object: its image is always the
    ///   warped previous output, refreshed every batch unless it says otherwise.
    init(_ r: ConfigReader, temporal: Bool = false) throws {
        if temporal {
            refreshInterval = 1
            image = .previousOutput
        }
        guard let w = try r.optionalString("weights"), !w.isEmpty else {
            throw ModelError.invalidConfig(file: r.file, key: "weights", reason: "is required (the LLLite's safetensors file)")
        }
        weights = w
        name = try r.optionalString("name")
        multiplier = try r.float("multiplier", multiplier)
        guard (0...2).contains(multiplier) else {
            throw ModelError.invalidConfig(file: r.file, key: "multiplier", reason: "must be 0…2, is \(multiplier)")
        }
        let blockName = try r.string("blocks", blocks.rawValue)
        guard let b = LLLiteBlocks(rawValue: blockName) else { throw r.unsupported("blocks", blockName) }
        blocks = b
        refreshInterval = try r.int("refresh_interval", refreshInterval)
        guard (1...10000).contains(refreshInterval) else {
            throw ModelError.invalidConfig(file: r.file, key: "refresh_interval", reason: "must be 1…10000, is \(refreshInterval)")
        }
        let imageName = try r.string("image", image.rawValue)
        guard let i = ControlImageSource(rawValue: imageName) else { throw r.unsupported("image", imageName) }
        guard !temporal || i == .previousOutput else {
            throw ModelError.invalidConfig(file: r.file, key: "image", reason: "a temporal adapter reads the previous output, not '\(imageName)'")
        }
        image = i
        blend = try r.float("blend", blend)
        guard (0...1).contains(blend), blend == 0 || image == .previousOutput else {
            throw ModelError.invalidConfig(file: r.file, key: "blend",
                                           reason: "must be 0…1 and needs image previous-output, is \(blend) with \(image.rawValue)")
        }
        if case .object(let o)? = r.raw("edges") {
            let e = ConfigReader(object: o, file: r.file + " (control.edges)")
            edges.low = try e.float("low", edges.low)
            edges.high = try e.float("high", edges.high)
            guard edges.low >= 0, edges.low <= edges.high, edges.high <= 4 else {
                throw ModelError.invalidConfig(file: e.file, key: "low", reason: "needs 0 ≤ low ≤ high ≤ 4, has \(edges.low), \(edges.high)")
            }
        }
    }
}
