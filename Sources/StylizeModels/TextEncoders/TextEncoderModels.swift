import StylizeCore

// The text encoders as conditioning backends (`TextEncoderModel`): what the
// conditioning encoder needs of each, with no switch over encoder kinds.

extension CLIPTextModel: TextEncoderModel {
    public static func shape(configFile: String) throws -> TextEncoderShape {
        let c = try CLIPTextConfig(file: configFile)
        return TextEncoderShape(className: registration.className, hiddenSize: c.hiddenSize, vocabSize: c.vocabSize, vision: nil)
    }

    public var hiddenSize: Int { config.hiddenSize }
    public var vocabSize: Int { config.vocabSize }
    public var vision: VisionTokenLayout? { nil }
    public static var conditioningDefaults: ConditioningSpec { .stableDiffusionCLIP }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput?) throws -> TextEncoderOutput {
        try refuseImages(images)
        return try self(tokens)
    }
}

extension Qwen3TextEncoder: TextEncoderModel {
    public static func shape(configFile: String) throws -> TextEncoderShape {
        let c = try Qwen3TextConfig(ConfigReader(file: configFile))
        return TextEncoderShape(className: registration.className, hiddenSize: c.hiddenSize, vocabSize: c.vocabSize, vision: nil)
    }

    public var hiddenSize: Int { model.config.hiddenSize }
    public var vocabSize: Int { model.config.vocabSize }
    public var vision: VisionTokenLayout? { nil }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput?) throws -> TextEncoderOutput {
        try refuseImages(images)
        return try self(tokens)
    }
}

extension Qwen3VLModel: TextEncoderModel {
    public static func shape(configFile: String) throws -> TextEncoderShape {
        let c = try Qwen3VLConfig(file: configFile)
        return TextEncoderShape(className: registration.className, hiddenSize: c.text.hiddenSize,
                                vocabSize: c.text.vocabSize, vision: layout(c))
    }

    public var hiddenSize: Int { config.text.hiddenSize }
    public var vocabSize: Int { config.text.vocabSize }
    public var vision: VisionTokenLayout? { Self.layout(config) }

    private static func layout(_ config: Qwen3VLConfig) -> VisionTokenLayout {
        VisionTokenLayout(visionStartTokenId: config.visionStartTokenId, imageTokenId: config.imageTokenId,
                          visionEndTokenId: config.visionEndTokenId, patchSize: config.vision.patchSize,
                          temporalPatchSize: config.vision.temporalPatchSize,
                          spatialMergeSize: config.vision.spatialMergeSize)
    }
}

/// A text encoder known from its config.json alone, without weights: what the element
/// needs to prepare a remote encoder's inputs and to check its output (hidden size, vision
/// token layout). It cannot run.
public final class TextEncoderShape: TextEncoderModel {
    public let className: String
    public let hiddenSize: Int
    public let vocabSize: Int
    public let vision: VisionTokenLayout?

    public init(className: String, hiddenSize: Int, vocabSize: Int, vision: VisionTokenLayout?) {
        (self.className, self.hiddenSize, self.vocabSize, self.vision) = (className, hiddenSize, vocabSize, vision)
    }

    public static func shape(configFile: String) throws -> TextEncoderShape {
        throw ModelError.invalidConfig(file: configFile, key: "architectures", reason: "a shape describes a loaded class")
    }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput?) throws -> TextEncoderOutput {
        throw ModelError.invalidInput(name: "text_encoder",
                                      reason: "\(className) was loaded without its weights (its prompts are encoded on a conditioning server)")
    }
}

/// Loads whichever conditioning backend a folder holds (by its config.json).
public enum TextEncoder {
    public static func load(directory: String) throws -> any TextEncoderModel {
        try ComponentRegistry.load(directory: directory, as: (any TextEncoderModel).self, role: "text encoder")
    }

    /// The encoder a folder holds, from its config.json only (no weights read).
    public static func shape(directory: String) throws -> TextEncoderShape {
        let file = directory + "/config.json"
        let found = try ComponentRegistry.detect(configFile: file)
        guard let encoder = found as? (any TextEncoderModel.Type) else {
            throw ModelError.invalidConfig(file: file, key: "model_type",
                                           reason: "is \(found.registration.className), which is not a text encoder")
        }
        return try encoder.shape(configFile: file)
    }
}
