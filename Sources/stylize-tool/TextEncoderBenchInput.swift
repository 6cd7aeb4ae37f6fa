import Foundation
import StylizeModels

/// Synthetic prompts (and images) for `bench text-encoder`.
enum TextEncoderBenchInput {
    static func make(encoder: any TextEncoderModel, directory: String, batch: Int, textTokens: Int,
                     image: (Int, Int)?, rng: inout SplitMix64) throws -> (TokenBatch, VisionInput?) {
        let vocabulary = min(encoder.vocabSize, 100_000)  // ordinary text ids, below Qwen's special tokens
        func text(_ n: Int) -> [Int] { (0..<n).map { _ in Int(rng.next() % UInt64(vocabulary)) } }
        guard let (h, w) = image else {
            return (TokenBatch(ids: (0..<batch).map { _ in text(textTokens) }), nil)
        }
        guard let layout = encoder.vision else {
            throw ModelError.invalidInput(name: "--image", reason: "only Qwen3-VL encoders take images")
        }
        let preprocessor = directory + "/preprocessor_config.json"
        var processor = Qwen2VLImageProcessor()
        if FileManager.default.fileExists(atPath: preprocessor) {
            processor = try Qwen2VLImageProcessor(file: preprocessor)
        } else {
            // Qwen3-VL's shipped settings.
            processor.patchSize = layout.patchSize
            processor.imageMean = [0.5, 0.5, 0.5]
            processor.imageStd = [0.5, 0.5, 0.5]
            processor.minPixels = 256 * 256
        }
        let pixels = (0..<(h * w * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let images = try processor(Array(repeating: RGBImage(width: w, height: h, pixels: pixels), count: batch))
        let merge = layout.spatialMergeSize
        let imageTokens = images.grids[0].patches / (merge * merge)
        let ids = (0..<batch).map { _ in
            [layout.visionStartTokenId] + Array(repeating: layout.imageTokenId, count: imageTokens) + [layout.visionEndTokenId]
                + text(textTokens)
        }
        return (TokenBatch(ids: ids), images)
    }
}
