import Foundation

/// A blocking Open Inference Protocol client for one model on one server: the
/// conditioning side thread calls it and waits, so the stream's own threads never do.
/// Each call has a timeout; retries are the caller's (`RemoteConditioningBackend`).
public final class OpenInferenceClient: Sendable {
    /// The server's base URL, e.g. http://encoder:8080 (no trailing /v2).
    public let server: URL
    public let model: String
    public let timeout: TimeInterval

    public init(server: URL, model: String, timeout: TimeInterval = 10) {
        self.server = server
        self.model = model
        self.timeout = timeout
    }

    private var modelPath: String {
        "v2/models/" + (model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? model)
    }

    /// `POST /v2/models/{model}/infer`; the response's tensors.
    public func infer(inputs: [OpenInferenceProtocol.Tensor], outputs: [String], id: String) throws -> [OpenInferenceProtocol.Tensor] {
        let url = server.appendingPathComponent(modelPath + "/infer")
        let response = try HTTPConnection.exchange(
            method: "POST", url: url, body: OpenInferenceProtocol.requestBody(id: id, inputs: inputs, outputs: outputs),
            contentType: "application/json", timeout: timeout)
        guard response.status == 200 else {
            let text = (try? JSONSerialization.jsonObject(with: response.body) as? [String: Any])?["error"] as? String
                ?? String(decoding: response.body.prefix(300), as: UTF8.self)
            throw OpenInferenceError.httpStatus(url: url.absoluteString, status: response.status, message: text)
        }
        return try OpenInferenceProtocol.responseTensors(response.body)
    }

    /// `GET /v2/models/{model}/ready`: whether the server answers and has the model loaded.
    public func isReady() -> Bool {
        let url = server.appendingPathComponent(modelPath + "/ready")
        return (try? HTTPConnection.exchange(method: "GET", url: url, body: nil, contentType: nil, timeout: timeout))?.status == 200
    }
}
