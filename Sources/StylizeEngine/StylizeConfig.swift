import Foundation
import StylizeModels

/// How the source frame conditions the U-Net (docs/ARCHITECTURE.md#sdedit,
/// #concat-channels, #concat-width).
public enum ConditioningMode: String, Sendable, CaseIterable {
    /// Re-noise the source latent to `strength` and denoise (SD-Turbo / StreamDiffusion).
    case sdedit
    /// Source latent concatenated on channels (InstructPix2Pix: 8-channel conv_in).
    case concatChannels = "concat-channels"
    /// Source latent side by side on width; the left half of the output is kept.
    case concatWidth = "concat-width"
}

/// A named style of the model (for UIs, docs and evaluation).
public struct StyleEntry: Sendable, Equatable {
    public var name: String
    public var prompts: [String]
    public var reference: String
}

/// Our `stylize.json`: everything about a model folder that diffusers' files do not say.
/// Absent file or keys mean the defaults of an SD-Turbo-class checkpoint: sdedit, the
/// folder's scheduler, CLIP conditioning as Stable Diffusion pipelines build it.
public struct StylizeConfig: Sendable {
    public var mode: ConditioningMode = .sdedit
    public var textEncoder: ConditioningSpec = .stableDiffusionCLIP
    public var defaultPrompt = ""
    public var steps = 1
    public var strength: Float = 0.5
    public var styles: [StyleEntry] = []
    /// The model's control adapter, if it ships one.
    public var control: ControlSpec?
    /// The model's temporal adapter (an LLLite on the warped previous output), if it ships one.
    public var temporal: ControlSpec?
    /// The resolution the model runs at, and what its decoder produces.
    public var working = WorkingResolution()
    public var outputHead: OutputHead = .rgb

    public init() {}

    /// - Parameter textEncoderDefaults: the encoder family's `text_encoder` defaults
    ///   (`TextEncoderModel.conditioningDefaults`); a missing file means all defaults.
    public init(file: String, textEncoderDefaults: ConditioningSpec) throws {
        guard FileManager.default.fileExists(atPath: file) else {
            self.init()
            textEncoder = textEncoderDefaults
            return
        }
        try self.init(ConfigReader(file: file), textEncoderDefaults: textEncoderDefaults)
    }

    /// Parses stylize.json contents; `file` names it in errors.
    public init(data: Data, file: String, textEncoderDefaults: ConditioningSpec) throws {
        try self.init(ConfigReader(data: data, file: file), textEncoderDefaults: textEncoderDefaults)
    }

    init(_ r: ConfigReader, textEncoderDefaults: ConditioningSpec) throws {
        self.init()
        textEncoder = textEncoderDefaults
        let file = r.file
        let modeName = try r.string("conditioning_mode", mode.rawValue)
        guard let m = ConditioningMode(rawValue: modeName) else { throw r.unsupported("conditioning_mode", modeName) }
        mode = m
        if case .object(let o)? = r.raw("text_encoder") {
            textEncoder = try ConditioningSpec(ConfigReader(object: o, file: file + " (text_encoder)"), defaults: textEncoder)
        }
        defaultPrompt = try r.string("default_prompt", defaultPrompt)
        steps = try r.int("steps", steps)
        strength = try r.float("strength", strength)
        guard (1...50).contains(steps) else {
            throw ModelError.invalidConfig(file: file, key: "steps", reason: "must be 1…50, is \(steps)")
        }
        guard strength > 0 && strength <= 1 else {
            throw ModelError.invalidConfig(file: file, key: "strength", reason: "must be in (0, 1], is \(strength)")
        }
        if case .object(let o)? = r.raw("working") {
            working = try WorkingResolution(ConfigReader(object: o, file: file + " (working)"))
        }
        let head = try r.string("output_head", outputHead.rawValue)
        guard let h = OutputHead(rawValue: head) else { throw r.unsupported("output_head", head) }
        outputHead = h
        if case .object(let o)? = r.raw("control") {
            control = try ControlSpec(ConfigReader(object: o, file: file + " (control)"))
        } else if r.has("control") {
            throw ModelError.invalidConfig(file: file, key: "control", reason: "must be an object")
        }
        if case .object(let o)? = r.raw("temporal") {
            temporal = try ControlSpec(ConfigReader(object: o, file: file + " (temporal)"), temporal: true)
        } else if r.has("temporal") {
            throw ModelError.invalidConfig(file: file, key: "temporal", reason: "must be an object")
        }
        if case .array(let list)? = r.raw("styles") {
            styles = try list.enumerated().map { i, v in
                guard case .object(let o) = v else {
                    throw ModelError.invalidConfig(file: file, key: "styles[\(i)]", reason: "must be an object")
                }
                let s = ConfigReader(object: o, file: file + " (styles[\(i)])")
                return StyleEntry(name: try s.string("name", "style \(i)"), prompts: try s.strings("prompts", []),
                                  reference: try s.string("reference", ""))
            }
        }
    }
}
