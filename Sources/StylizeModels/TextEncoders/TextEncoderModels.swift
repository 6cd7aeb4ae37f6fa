import StylizeCore

// The text encoders as conditioning backends (`TextEncoderModel`): what the
// conditioning encoder needs of each, with no switch over encoder kinds.

extension CLIPTextModel: TextEncoderModel {
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
    public var hiddenSize: Int { model.config.hiddenSize }
    public var vocabSize: Int { model.config.vocabSize }
    public var vision: VisionTokenLayout? { nil }

    public func callAsFunction(_ tokens: TokenBatch, images: VisionInput?) throws -> TextEncoderOutput {
        try refuseImages(images)
        return try self(tokens)
    }
}

extension Qwen3VLModel: TextEncoderModel {
    public var hiddenSize: Int { config.text.hiddenSize }
    public var vocabSize: Int { config.text.vocabSize }
    public var vision: VisionTokenLayout? {
        VisionTokenLayout(visionStartTokenId: config.visionStartTokenId, imageTokenId: config.imageTokenId,
                          visionEndTokenId: config.visionEndTokenId, patchSize: config.vision.patchSize,
                          temporalPatchSize: config.vision.temporalPatchSize,
                          spatialMergeSize: config.vision.spatialMergeSize)
    }
}

/// Loads whichever conditioning backend a folder holds (by its config.json).
public enum TextEncoder {
    public static func load(directory: String) throws -> any TextEncoderModel {
        try ComponentRegistry.load(directory: directory, as: (any TextEncoderModel).self, role: "text encoder")
    }
}
