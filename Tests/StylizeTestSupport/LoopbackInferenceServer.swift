import FlyingFox
import Foundation
import StylizeCore
import StylizeEngine
import StylizeModels

/// An Open Inference Protocol server on loopback that runs a `ConditioningEncoder` on
/// the inputs it receives (what a real server's runtime does with transformers), can
/// answer garbage, and can be stopped and started again on the same port.
public final class LoopbackInferenceServer: @unchecked Sendable {
    public let encoder: ConditioningEncoder
    public let model: String
    /// Inference requests received.
    public let requests = Locked(0)
    /// Answer every request with a malformed response.
    public let garbage = Locked(false)
    private var server: HTTPServer?
    private var task: Task<Void, Never>?
    public private(set) var port: UInt16 = 0

    public init(encoder: ConditioningEncoder, model: String) {
        self.encoder = encoder
        self.model = model
    }

    public var url: URL { URL(string: "http://127.0.0.1:\(port)")! }

    /// Listens (on the port it had before, after a `stop`).
    public func start() throws {
        let server = HTTPServer(address: try .inet(ip4: "127.0.0.1", port: port), timeout: 5, logger: .disabled)
        let (encoder, requests, garbage, model) = (encoder, requests, garbage, model)
        Self.blocking {
            await server.appendRoute(HTTPRoute("POST /v2/models/\(model)/infer")) { request in
                requests.withLock { $0 += 1 }
                if garbage.withLock({ $0 }) { return HTTPResponse(statusCode: .ok, body: Data("{\"outputs\": [{\"name\": 1}]}".utf8)) }
                let body = try await request.bodyData
                let reply = try Self.infer(body, encoder: encoder, model: model)
                return HTTPResponse(statusCode: .ok, headers: [.contentType: "application/json"], body: reply)
            }
            await server.appendRoute(HTTPRoute("GET /v2/models/\(model)/ready")) { _ in HTTPResponse(statusCode: .ok) }
        }
        self.server = server
        task = Task.detached { try? await server.run() }
        for _ in 0..<500 {
            if Self.blockingValue({ await server.isListening }) { break }
            Thread.sleep(forTimeInterval: 0.01)
        }
        if case let .ip4(_, p)? = Self.blockingValue({ await server.listeningAddress }) { port = p }
    }

    public func stop() {
        guard let server else { return }
        Self.blocking { await server.stop(timeout: 0) }
        task?.cancel()
        self.server = nil
    }

    /// The request's inputs through the encoder, as an inference response.
    static func infer(_ body: Data, encoder: ConditioningEncoder, model: String) throws -> Data {
        let root = try JSONSerialization.jsonObject(with: body) as! [String: Any]
        var tensors: [String: (shape: [Int], data: [NSNumber])] = [:]
        for case let input as [String: Any] in root["inputs"] as! [Any] {
            tensors[input["name"] as! String] = ((input["shape"] as! [NSNumber]).map(\.intValue), input["data"] as! [NSNumber])
        }
        func rows(_ name: String) -> [[Int]] {
            let t = tensors[name]!
            return (0..<t.shape[0]).map { b in t.data[(b * t.shape[1])..<((b + 1) * t.shape[1])].map(\.intValue) }
        }
        var images: VisionInput?
        if let pixels = tensors["pixel_values"], let grid = tensors["image_grid_thw"] {
            let g = grid.data.map(\.intValue)
            images = VisionInput(pixelValues: Tensor(shape: pixels.shape, data: pixels.data.map(\.floatValue)),
                                 grids: (0..<grid.shape[0]).map { GridTHW(t: g[3 * $0], h: g[3 * $0 + 1], w: g[3 * $0 + 2]) })
        }
        let out = try encoder.encode(TokenBatch(ids: rows("input_ids"), attentionMask: rows("attention_mask")), images: images)
        let json: [String: Any] = ["model_name": model, "outputs": [[
            "name": "conditioning", "shape": out.shape, "datatype": "FP32", "data": out.data.array.map { Double($0) },
        ]]]
        return try JSONSerialization.data(withJSONObject: json)
    }

    private static func blocking(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task.detached { await body(); done.signal() }
        done.wait()
    }

    private static func blockingValue<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let box = Locked<T?>(nil)
        blocking { let v = await body(); box.withLock { $0 = v } }
        return box.withLock { $0! }
    }
}

