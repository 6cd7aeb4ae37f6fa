import Foundation
import StylizeCore

/// The Open Inference Protocol (KServe v2) over HTTP/REST, the part a client needs: the
/// JSON of an inference request and of its response
/// (https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/), which
/// KServe, Triton Inference Server, Seldon MLServer and OpenVINO Model Server all serve.
/// Tensor data travels flattened in row-major order.
public enum OpenInferenceProtocol {
    /// One named tensor of a request or response.
    public struct Tensor: Sendable, Equatable {
        public enum Data: Sendable, Equatable {
            case int64([Int])
            case fp32([Float])
        }
        public let name: String
        public let shape: [Int]
        public let data: Data

        public init(name: String, shape: [Int], data: Data) {
            self.name = name
            self.shape = shape
            self.data = data
        }

        public var datatype: String {
            switch data {
            case .int64: "INT64"
            case .fp32: "FP32"
            }
        }

        var count: Int {
            switch data {
            case .int64(let v): v.count
            case .fp32(let v): v.count
            }
        }
    }

    /// `POST /v2/models/{model}/infer`'s body: the inputs, and the outputs asked for.
    public static func requestBody(id: String, inputs: [Tensor], outputs: [String]) -> Data {
        var json = "{\"id\":\(quoted(id)),\"inputs\":["
        for (i, t) in inputs.enumerated() {
            if i > 0 { json += "," }
            json += "{\"name\":\(quoted(t.name)),\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],"
            json += "\"datatype\":\"\(t.datatype)\",\"data\":["
            switch t.data {
            case .int64(let v): json += v.map(String.init).joined(separator: ",")
            // Float's description is the shortest text that reads back to the same Float.
            case .fp32(let v): json += v.map { $0.isFinite ? $0.description : "0" }.joined(separator: ",")
            }
            json += "]}"
        }
        json += "],\"outputs\":[\(outputs.map { "{\"name\":\(quoted($0))}" }.joined(separator: ","))]}"
        return Data(json.utf8)
    }

    /// The tensors of an inference response, checked: every field present and of its
    /// type, the data as long as the shape says, numbers finite. Errors name the field.
    public static func responseTensors(_ body: Data) throws -> [Tensor] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: body)
        } catch {
            throw OpenInferenceError.malformedResponse("not JSON (\(body.count) bytes)")
        }
        guard let root = object as? [String: Any] else { throw OpenInferenceError.malformedResponse("not a JSON object") }
        if let message = root["error"] as? String { throw OpenInferenceError.serverError(message) }
        guard let outputs = root["outputs"] as? [Any] else { throw OpenInferenceError.malformedResponse("no \"outputs\" array") }
        return try outputs.enumerated().map { i, item in
            guard let o = item as? [String: Any] else { throw OpenInferenceError.malformedResponse("outputs[\(i)] is not an object") }
            guard let name = o["name"] as? String else { throw OpenInferenceError.malformedResponse("outputs[\(i)].name is missing") }
            guard let shapeValues = o["shape"] as? [Any], let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 }) else {
                throw OpenInferenceError.malformedResponse("outputs '\(name)': shape is not a list of non-negative integers")
            }
            guard let datatype = o["datatype"] as? String else { throw OpenInferenceError.malformedResponse("outputs '\(name)': datatype is missing") }
            guard let raw = o["data"] as? [Any] else { throw OpenInferenceError.malformedResponse("outputs '\(name)': data is not an array") }
            var flat: [Any] = []
            flatten(raw, into: &flat)
            let expected = shape.reduce(1, *)
            guard flat.count == expected else {
                throw OpenInferenceError.malformedResponse("outputs '\(name)': \(flat.count) values for shape \(shape) (\(expected))")
            }
            switch datatype {
            case "FP32", "FP64", "FP16":
                var values = [Float](repeating: 0, count: flat.count)
                for (k, v) in flat.enumerated() {
                    guard let n = v as? NSNumber, n.doubleValue.isFinite else {
                        throw OpenInferenceError.malformedResponse("outputs '\(name)': data[\(k)] is not a finite number")
                    }
                    values[k] = n.floatValue
                }
                return Tensor(name: name, shape: shape, data: .fp32(values))
            case "INT64", "INT32":
                guard let values = integers(flat) else {
                    throw OpenInferenceError.malformedResponse("outputs '\(name)': data is not all integers")
                }
                return Tensor(name: name, shape: shape, data: .int64(values))
            default:
                throw OpenInferenceError.malformedResponse("outputs '\(name)': datatype \(datatype) is not supported")
            }
        }
    }

    private static func flatten(_ values: [Any], into out: inout [Any]) {
        for v in values {
            if let nested = v as? [Any] { flatten(nested, into: &out) } else { out.append(v) }
        }
    }

    private static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        out.reserveCapacity(values.count)
        for v in values {
            guard let n = v as? NSNumber, n.doubleValue == n.doubleValue.rounded(), abs(n.doubleValue) < 9e15 else { return nil }
            out.append(n.intValue)
        }
        return out
    }

    private static func quoted(_ s: String) -> String {
        let data = try? JSONSerialization.data(withJSONObject: [s], options: [.fragmentsAllowed])
        let array = data.flatMap { String(data: $0, encoding: .utf8) } ?? "[\"\"]"
        return String(array.dropFirst().dropLast())
    }
}

/// Why a call to an inference server failed. Every case is transient from the stream's
/// point of view: the server may come back, or be fixed, and the call is retried.
public enum OpenInferenceError: Error, CustomStringConvertible, Sendable, Equatable {
    /// No answer: connection refused, reset, DNS, or no response within the timeout.
    case unreachable(url: String, reason: String)
    /// An answer with an HTTP status other than 200, and the body's error text.
    case httpStatus(url: String, status: Int, message: String)
    /// The server's own `{"error": …}`.
    case serverError(String)
    /// An answer that is not an inference response, or not the one asked for.
    case malformedResponse(String)

    public var description: String {
        switch self {
        case let .unreachable(url, reason): "inference server \(url) unreachable: \(reason)"
        case let .httpStatus(url, status, message): "inference server \(url) answered HTTP \(status): \(message)"
        case let .serverError(message): "inference server error: \(message)"
        case let .malformedResponse(reason): "malformed inference response: \(reason)"
        }
    }
}
