import Foundation
import XCTest
@testable import StylizeEngine
import StylizeCore
import StylizeModels
import StylizeTestSupport

/// The remote conditioning backend against a loopback Open Inference Protocol server
/// running the embedded model's encoder: the same conditioning as the local encoder; a
/// server that stops or answers garbage never takes the last good conditioning away, and
/// the service recovers once it is back.
final class RemoteConditioningTests: XCTestCase {
    private static let model = try! StylizeModel(path: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("models/nano").path)

    private func frame(_ seed: UInt64) -> RGBImage {
        var rng = SplitMix64(seed: seed)
        return RGBImage(width: 96, height: 64, pixels: (0..<(96 * 64 * 3)).map { _ in UInt8(rng.next() % 256) })
    }

    func testRemoteConditioningEqualsTheLocalEncoders() throws {
        let server = LoopbackInferenceServer(encoder: Self.model.conditioning, model: "nano")
        try server.start()
        defer { server.stop() }
        let backend = RemoteConditioningBackend(client: OpenInferenceClient(server: server.url, model: "nano", timeout: 20),
                                                encoder: Self.model.conditioning)
        XCTAssertTrue(backend.client.isReady())
        XCTAssertTrue(backend.seesImages, "nano's encoder is vision-aware: frames travel as pixel_values")
        let prompts = ["a watercolor painting", "pop art"]
        let frames: [RGBImage?] = [frame(1), nil]
        let remote = try backend.encode(prompts: prompts, frames: frames)
        let local: Tensor = try Self.model.conditioning.encode(prompts: prompts, frames: frames)
        XCTAssertEqual(remote.count, 2)
        for (b, r) in remote.enumerated() {
            XCTAssertEqual(r.shape, [local.shape[1], local.shape[2]])
            let per = local.shape[1] * local.shape[2]
            let expected = Tensor(shape: r.shape, data: Array(local.data.array[(b * per)..<((b + 1) * per)]))
            // JSON carries each float exactly; the server's forward pass is the same code.
            XCTAssertLessThan(r.maxAbsDifference(expected), 1e-5, "prompt \(b)")
        }
        XCTAssertGreaterThan(remote[0].maxAbsDifference(remote[1]), 0.01, "two prompts, two conditionings")
        XCTAssertEqual(server.requests.withLock { $0 }, 1, "one request for the batch")
    }

    func testUnreachableOrGarbageServersAreTypedErrorsAfterTheRetries() throws {
        let server = LoopbackInferenceServer(encoder: Self.model.conditioning, model: "nano")
        try server.start()
        server.garbage.withLock { $0 = true }
        let backend = RemoteConditioningBackend(client: OpenInferenceClient(server: server.url, model: "nano", timeout: 5),
                                                encoder: Self.model.conditioning, attempts: 2, backoff: 0.05)
        XCTAssertThrowsError(try backend.encode(prompts: ["pop art"], frames: [nil])) { error in
            guard case .malformedResponse(let reason)? = error as? OpenInferenceError else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("outputs[0].name"), reason)
        }
        XCTAssertEqual(server.requests.withLock { $0 }, 2, "retried once")
        server.stop()
        XCTAssertThrowsError(try backend.encode(prompts: ["pop art"], frames: [nil])) { error in
            guard case .unreachable(let url, _)? = error as? OpenInferenceError else { return XCTFail("\(error)") }
            XCTAssertTrue(url.hasSuffix("/v2/models/nano/infer"), url)
        }
        XCTAssertFalse(backend.client.isReady())
    }

    func testServiceKeepsTheLastConditioningWhileTheServerIsDownAndRecovers() throws {
        let server = LoopbackInferenceServer(encoder: Self.model.conditioning, model: "nano")
        try server.start()
        defer { server.stop() }
        let backend = RemoteConditioningBackend(client: OpenInferenceClient(server: server.url, model: "nano", timeout: 5),
                                                encoder: Self.model.conditioning, attempts: 1)
        let service = ConditioningService(backend: backend, modelID: "nano", prompt: "a sepia photo")
        let errors = Locked<[String]>([])
        let activated = Locked<[String]>([])
        service.onError = { e in errors.withLock { $0.append("\(e)") } }
        service.onActivated = { p, _ in activated.withLock { $0.append(p) } }
        service.start()
        defer { service.stop() }
        service.offerFrame(frame(2), index: 0)  // a vision-aware encoder starts with the first frame
        let first = try XCTUnwrap(service.waitForFirst(timeout: 30))
        XCTAssertEqual(first.prompt, "a sepia photo")

        // The same prompt again, and back after another: served from the cache, never re-requested.
        service.setPrompt("pop art")
        XCTAssertTrue(waitUntil(30) { service.current()?.prompt == "pop art" })
        let afterTwo = server.requests.withLock { $0 }
        service.setPrompt("a sepia photo")
        XCTAssertTrue(waitUntil(5) { service.current()?.prompt == "a sepia photo" })
        XCTAssertEqual(server.requests.withLock { $0 }, afterTwo, "a cached prompt is never requested again")

        // Server down: the new prompt fails, the last good conditioning stays in use.
        server.stop()
        service.setPrompt("neon glow")
        XCTAssertTrue(waitUntil(10) { !errors.withLock { $0 }.isEmpty })
        XCTAssertEqual(service.current()?.prompt, "a sepia photo", "the last good conditioning stays")
        XCTAssertTrue(errors.withLock { $0 }[0].contains("unreachable"), errors.withLock { $0 }[0])

        // Back on the same port: the retry gets the new prompt through within the retry pause.
        let downAt = Date()
        try server.start()
        XCTAssertTrue(waitUntil(10) { service.current()?.prompt == "neon glow" }, "recovers once the server is back")
        XCTAssertLessThan(Date().timeIntervalSince(downAt), ConditioningService.lastRetryDelay + 2)
        XCTAssertEqual(activated.withLock { $0 }.last, "neon glow")
    }

    /// The request is the protocol's JSON, floats exact; malformed responses are errors
    /// naming what is wrong; nested data arrays (allowed by the protocol) are flattened.
    func testProtocolRequestAndResponseChecks() throws {
        let floats: [Float] = [0.1, -3.4028235e38, 1e-45, 7]
        let body = OpenInferenceProtocol.requestBody(id: "r\"1", inputs: [
            .init(name: "input_ids", shape: [1, 3], data: .int64([5, 0, 151643])),
            .init(name: "pixel_values", shape: [2, 2], data: .fp32(floats)),
        ], outputs: ["conditioning"])
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        XCTAssertEqual(root["id"] as? String, "r\"1")
        let inputs = try XCTUnwrap(root["inputs"] as? [[String: Any]])
        XCTAssertEqual(inputs.map { $0["datatype"] as? String }, ["INT64", "FP32"])
        XCTAssertEqual((inputs[0]["data"] as? [NSNumber])?.map(\.intValue), [5, 0, 151643])
        XCTAssertEqual((inputs[1]["data"] as? [NSNumber])?.map(\.floatValue), floats)
        XCTAssertEqual((root["outputs"] as? [[String: String]])?.first?["name"], "conditioning")

        func response(_ json: String) throws -> [OpenInferenceProtocol.Tensor] {
            try OpenInferenceProtocol.responseTensors(Data(json.utf8))
        }
        let nested = try response(#"{"outputs": [{"name": "c", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2.5], [3, 4]]}]}"#)
        XCTAssertEqual(nested, [.init(name: "c", shape: [2, 2], data: .fp32([1, 2.5, 3, 4]))])
        let cases: [(String, String)] = [
            (#"{"outputs": [{"name": "c", "shape": [3], "datatype": "FP32", "data": [1, 2]}]}"#, "2 values for shape [3]"),
            (#"{"outputs": [{"name": "c", "shape": [1], "datatype": "FP32", "data": ["x"]}]}"#, "data[0] is not a finite number"),
            (#"{"outputs": [{"name": "c", "shape": [1], "datatype": "BYTES", "data": [1]}]}"#, "BYTES is not supported"),
            (#"{"outputs": [{"name": "c", "shape": [-1], "datatype": "FP32", "data": []}]}"#, "shape is not"),
            (#"{"model_name": "m"}"#, "no \"outputs\" array"),
            ("<html>", "not JSON"),
        ]
        for (json, message) in cases {
            XCTAssertThrowsError(try response(json), json) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error) should say \(message)")
            }
        }
        XCTAssertThrowsError(try response(#"{"error": "model nano is not loaded"}"#)) { error in
            XCTAssertEqual(error as? OpenInferenceError, .serverError("model nano is not loaded"))
        }
        // A response of the wrong shape for this model is refused before it reaches the U-Net.
        let wrong = [OpenInferenceProtocol.Tensor(name: "conditioning", shape: [1, 4, 8], data: .fp32(Array(repeating: 0, count: 32)))]
        XCTAssertThrowsError(try RemoteConditioningBackend.conditioning(from: wrong, expected: [1, 48, 8])) { error in
            XCTAssertTrue("\(error)".contains("[1, 4, 8]") && "\(error)".contains("[1, 48, 8]"), "\(error)")
        }
    }

    /// An engine with a conditioning server loads the folder without the encoder's
    /// weights (here: deleted) and gives the frames of an engine encoding locally.
    func testRemoteEngineNeedsNoEncoderWeightsAndMatchesTheLocalEngine() throws {
        let full = try TinyModelFolder.make(mode: .sdedit, scheduler: "DDIMScheduler",
                                            schedulerExtra: #", "prediction_type": "sample""#)
        let bare = full + "-no-encoder-weights"
        defer { for d in [full, bare] { try? FileManager.default.removeItem(atPath: d) } }
        try FileManager.default.copyItem(atPath: full, toPath: bare)
        let weights = try FileManager.default.contentsOfDirectory(atPath: bare + "/text_encoder").filter { $0.hasSuffix(".safetensors") }
        XCTAssertFalse(weights.isEmpty)
        for w in weights { try FileManager.default.removeItem(atPath: bare + "/text_encoder/" + w) }
        XCTAssertThrowsError(try StylizeModel(path: bare), "the folder really lacks the weights")

        let local = try StylizeEngine(modelPath: full)
        let server = LoopbackInferenceServer(encoder: local.model.conditioning, model: "tiny")
        try server.start()
        defer { server.stop() }
        let remote = try StylizeEngine(source: EngineSource(modelPath: bare, conditioningServer: server.url.absoluteString,
                                                            conditioningModel: "tiny"))
        XCTAssertTrue(remote.model.conditioning.encoder is TextEncoderShape, "no encoder weights loaded")
        XCTAssertThrowsError(try remote.model.conditioning.encode(prompts: ["x"], frames: nil) as Tensor) { error in
            XCTAssertTrue("\(error)".contains("without its weights"), "\(error)")
        }
        var settings = StylizeSettings()
        settings.prompt = "a watercolor painting"
        let frames = TinyModelFolder.frames(2, 32, 32)
        for e in [local, remote] { try e.start(settings: settings) }
        defer { for e in [local, remote] { e.stop() } }
        let expected = try StylizeEngine.processWaitingForPrompt(local, frames, settings: settings)
        let got = try StylizeEngine.processWaitingForPrompt(remote, frames, settings: settings)
        XCTAssertLessThan(got.maxAbsDifference(expected), 1e-5)
        XCTAssertEqual(server.requests.withLock { $0 }, 1)
        XCTAssertThrowsError(try StylizeEngine(source: EngineSource(modelPath: full, conditioningServer: "https://encoder:8080"))) { error in
            XCTAssertTrue("\(error)".contains("not an http:// URL"), "\(error)")
        }
    }

    private func waitUntil(_ seconds: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return condition()
    }
}
