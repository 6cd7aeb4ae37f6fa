/// Everything that can go wrong while loading or running a model, each case naming the
/// file, key or tensor at fault so a user can act on the message alone.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String, what: String)
    case invalidSafeTensors(file: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case shapeMismatch(file: String, tensor: String, expected: [Int], found: [Int])
    case unexpectedTensors(file: String, tensors: [String])
    case invalidConfig(file: String, key: String, reason: String)
    case unsupported(file: String, key: String, value: String)
    case invalidInput(name: String, reason: String)

    public var description: String {
        switch self {
        case let .fileNotFound(path, what):
            return "\(path): \(what) not found"
        case let .invalidSafeTensors(file, reason):
            return "\(file): not a valid safetensors file: \(reason)"
        case let .missingTensor(file, tensor):
            return "\(file): tensor '\(tensor)' is missing"
        case let .shapeMismatch(file, tensor, expected, found):
            return "\(file): tensor '\(tensor)' has shape \(found), expected \(expected)"
        case let .unexpectedTensors(file, tensors):
            let shown = tensors.prefix(8).map { "'\($0)'" }.joined(separator: ", ")
            let more = tensors.count > 8 ? " and \(tensors.count - 8) more" : ""
            return "\(file): \(tensors.count) tensor(s) not used by the model config: \(shown)\(more)"
        case let .invalidConfig(file, key, reason):
            return "\(file): key '\(key)': \(reason)"
        case let .unsupported(file, key, value):
            return "\(file): \(key) = \(value) is not supported"
        case let .invalidInput(name, reason):
            return "input '\(name)': \(reason)"
        }
    }
}
