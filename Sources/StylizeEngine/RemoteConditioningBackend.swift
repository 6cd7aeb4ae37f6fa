import Foundation
import StylizeCore
import StylizeModels

/// Prompt encoding on an inference server speaking the Open Inference Protocol: the
/// tokenizer and image processor run here, exactly as for the local encoder
/// (`ConditioningEncoder.prepare`), the server runs the encoder and returns the
/// conditioning tensor (docs/ARCHITECTURE.md#remote-conditioning). Many streams and hosts
/// then share one encoder, while each keeps its U-Net.
///
/// Request inputs: `input_ids` [B, T] and `attention_mask` [B, T] (INT64), and for
/// frames `pixel_values` [Σ patches, C·Tp·P·P] (FP32) and `image_grid_thw` [N, 3] (INT64);
/// the output asked for is `conditioning`, [B, T − drop_first, width] (FP32).
public final class RemoteConditioningBackend: ConditioningBackend {
    public let client: OpenInferenceClient
    /// Supplies the inputs and the expected output shape; its encoder is not run.
    public let encoder: ConditioningEncoder
    /// Tries per `encode` call (the service retries later calls on its own).
    public let attempts: Int
    /// Seconds before the second try; doubled for each further one.
    public let backoff: TimeInterval
    private let requests = Locked(0)

    public init(client: OpenInferenceClient, encoder: ConditioningEncoder, attempts: Int = 3, backoff: TimeInterval = 0.25) {
        self.client = client
        self.encoder = encoder
        self.attempts = max(1, attempts)
        self.backoff = backoff
    }

    public var seesImages: Bool { encoder.encoder.acceptsImages }
    public var retriesAfterFailure: Bool { true }
    /// Inference requests sent so far (each try counts).
    public var requestCount: Int { requests.withLock { $0 } }

    public func encode(prompts: [String], frames: [RGBImage?]) throws -> [Tensor] {
        let (tokens, images) = try encoder.prepare(prompts: prompts, frames: frames)
        let inputs = Self.inputs(tokens, images: images)
        let expected = [tokens.batch, tokens.length - encoder.spec.dropFirst, encoder.outputWidth]
        var lastError: Error = OpenInferenceError.malformedResponse("no attempt made")
        for attempt in 0..<attempts {
            if attempt > 0 { Thread.sleep(forTimeInterval: backoff * Double(1 << (attempt - 1))) }
            requests.withLock { $0 += 1 }
            do {
                let outputs = try client.infer(inputs: inputs, outputs: ["conditioning"], id: UUID().uuidString)
                return try Self.conditioning(from: outputs, expected: expected)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }

    static func inputs(_ tokens: TokenBatch, images: VisionInput?) -> [OpenInferenceProtocol.Tensor] {
        let shape = [tokens.batch, tokens.length]
        let mask = tokens.attentionMask ?? Array(repeating: Array(repeating: 1, count: tokens.length), count: tokens.batch)
        var inputs = [
            OpenInferenceProtocol.Tensor(name: "input_ids", shape: shape, data: .int64(tokens.ids.flatMap { $0 })),
            OpenInferenceProtocol.Tensor(name: "attention_mask", shape: shape, data: .int64(mask.flatMap { $0 })),
        ]
        if let images {
            inputs.append(.init(name: "pixel_values", shape: images.pixelValues.shape, data: .fp32(images.pixelValues.data.array)))
            inputs.append(.init(name: "image_grid_thw", shape: [images.grids.count, 3],
                                data: .int64(images.grids.flatMap { [$0.t, $0.h, $0.w] })))
        }
        return inputs
    }

    /// The response's `conditioning`, checked against the shape this model's local encoder
    /// would give, split into one [T, D] tensor per prompt.
    static func conditioning(from outputs: [OpenInferenceProtocol.Tensor], expected: [Int]) throws -> [Tensor] {
        guard let out = outputs.first(where: { $0.name == "conditioning" }) else {
            throw OpenInferenceError.malformedResponse("no 'conditioning' output (got \(outputs.map(\.name)))")
        }
        guard out.shape == expected else {
            throw OpenInferenceError.malformedResponse("'conditioning' has shape \(out.shape), this model expects \(expected)")
        }
        guard case .fp32(let values) = out.data else {
            throw OpenInferenceError.malformedResponse("'conditioning' is \(out.datatype), expected FP32")
        }
        let per = expected[1] * expected[2]
        return (0..<expected[0]).map { b in
            Tensor(shape: [expected[1], expected[2]], data: Array(values[(b * per)..<((b + 1) * per)]))
        }
    }
}
