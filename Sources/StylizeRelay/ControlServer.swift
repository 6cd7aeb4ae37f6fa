import FlyingFox
import FlyingSocks
import Foundation
import Logging

/// What `POST /prompt` accepts: a JSON object {"prompt": "..."} (when the body starts with
/// `{` or the Content-Type is JSON), otherwise the body itself as plain UTF-8 text, with
/// surrounding whitespace (a trailing newline from `curl --data-binary @file`) trimmed.
/// Bodies over `maxBodyBytes` and prompts over `maxPromptBytes` are refused: the text
/// encoder only reads a few hundred tokens, and a multi-megabyte prompt would cost
/// seconds of encoder time (and the memory to hold it) for nothing.
public enum PromptRequest {
    public static let maxBodyBytes = 64 * 1024
    public static let maxPromptBytes = 4096

    public enum Failure: Error, Equatable {
        case notUTF8
        case badJSON(String)
        case bodyTooLarge(limit: Int)
        case promptTooLong(bytes: Int, limit: Int)

        /// 413 for what is too big, 400 for what is malformed.
        public var statusCode: Int {
            switch self {
            case .bodyTooLarge, .promptTooLong: return 413
            case .notUTF8, .badJSON: return 400
            }
        }

        /// The text of the JSON error reply.
        public var message: String {
            switch self {
            case .notUTF8: return "the body is not UTF-8 text"
            case let .badJSON(reason): return reason
            case let .bodyTooLarge(limit): return "the request body is over \(limit) bytes"
            case let .promptTooLong(bytes, limit): return "the prompt is \(bytes) bytes of UTF-8, over the limit of \(limit)"
            }
        }
    }

    /// Reads a body of at most `maxBodyBytes`: refused from its Content-Length alone when
    /// that says more, otherwise as soon as more has arrived (a chunked body has none).
    public static func readBody<Chunks: AsyncSequence>(_ chunks: Chunks, contentLength: String?) async throws -> Result<Data, Failure>
    where Chunks.Element == Data {
        if let declared = contentLength.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), declared > maxBodyBytes {
            return .failure(.bodyTooLarge(limit: maxBodyBytes))
        }
        var body = Data()
        for try await chunk in chunks {
            guard body.count + chunk.count <= maxBodyBytes else { return .failure(.bodyTooLarge(limit: maxBodyBytes)) }
            body.append(chunk)
        }
        return .success(body)
    }

    public static func parse(body: Data, contentType: String?) -> Result<String, Failure> {
        guard body.count <= maxBodyBytes else { return .failure(.bodyTooLarge(limit: maxBodyBytes)) }
        guard let text = String(data: body, encoding: .utf8) else { return .failure(.notUTF8) }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let isJSON = contentType?.lowercased().contains("json") == true || trimmed.hasPrefix("{")
        let prompt: String
        if isJSON {
            struct Body: Decodable { let prompt: String }
            do {
                prompt = try JSONDecoder().decode(Body.self, from: Data(trimmed.utf8)).prompt
            } catch {
                return .failure(.badJSON("expected {\"prompt\": \"...\"}: \(error)"))
            }
        } else {
            prompt = trimmed
        }
        let bytes = prompt.utf8.count
        guard bytes <= maxPromptBytes else { return .failure(.promptTooLong(bytes: bytes, limit: maxPromptBytes)) }
        return .success(prompt)
    }
}

/// Applies a prompt and records it as the requested one in one step. Requests are
/// handled concurrently; recorded and applied separately, two requests could record in
/// one order and apply in the other, and /status would name a requested prompt that is
/// not the one the stream settles on.
final class PromptSetter: @unchecked Sendable {
    private let lock = NSLock()
    private let status: RelayStatus
    private let apply: @Sendable (String) -> Void

    init(status: RelayStatus, apply: @escaping @Sendable (String) -> Void) {
        self.status = status
        self.apply = apply
    }

    func set(_ prompt: String) {
        lock.withLock {
            status.update { $0.requestedPrompt = prompt }
            apply(prompt)
        }
    }
}

/// The HTTP control endpoint (FlyingFox on Swift concurrency threads, independent of the
/// GLib main loop): `GET /status` → StatusReport JSON, `POST /prompt` → changes the prompt.
final class ControlServer: @unchecked Sendable {
    private let server: HTTPServer
    private let display: String
    private let logger: Logger
    private var task: Task<Void, Never>?

    init(host: String, port: UInt16, status: RelayStatus, setPrompt: @escaping @Sendable (String) -> Void, logger: Logger) throws {
        display = "\(host):\(port)"
        self.logger = logger
        let address: sockaddr_in
        do {
            address = try .inet(ip4: host, port: port)
        } catch {
            throw RelayError.controlListenFailed(address: display, reason: "not an IPv4 address")
        }
        server = HTTPServer(address: address, timeout: 15, logger: FlyingFoxLog(logger: logger))
        let log = logger
        let json: HTTPHeaders = [.contentType: "application/json"]
        let prompts = PromptSetter(status: status, apply: setPrompt)
        Self.blockingAwait { [server] in
            await server.appendRoute("GET /status") { _ in
                HTTPResponse(statusCode: .ok, headers: json, body: status.snapshot().json())
            }
            await server.appendRoute("POST /prompt") { request in
                let parsed = try await PromptRequest.readBody(request.bodySequence, contentLength: request.headers[.contentLength])
                    .flatMap { PromptRequest.parse(body: $0, contentType: request.headers[.contentType]) }
                switch parsed {
                case let .success(prompt):
                    log.info("prompt changed by \(addressText(request.remoteAddress)): '\(prompt)'")
                    prompts.set(prompt)
                    let reply = try JSONSerialization.data(withJSONObject: ["requested_prompt": prompt], options: [.sortedKeys])
                    return HTTPResponse(statusCode: .accepted, headers: json, body: reply)
                case let .failure(failure):
                    let reply = try JSONSerialization.data(withJSONObject: ["error": failure.message])
                    let code: HTTPStatusCode = failure.statusCode == 413 ? .payloadTooLarge : .badRequest
                    return HTTPResponse(statusCode: code, headers: json, body: reply)
                }
            }
        }
    }

    /// Starts listening; returns the port bound (for port 0), or throws when it cannot.
    func start() throws -> UInt16 {
        let outcome = Outcome()
        task = Task.detached { [server] in
            do {
                try await server.run()
            } catch {
                outcome.finish(.failure(error))
            }
        }
        Task.detached { [server] in
            // run() fails at once when the port is taken; otherwise it listens within moments.
            for _ in 0..<500 {
                if await server.isListening {
                    if case let .ip4(_, port)? = await server.listeningAddress {
                        outcome.finish(.success(port))
                    } else {
                        outcome.finish(.success(0))
                    }
                    return
                }
                try? await Task.sleep(nanoseconds: 10_000_000)
            }
            outcome.finish(.failure(RelayError.controlListenFailed(address: "", reason: "not listening after 5 s")))
        }
        switch outcome.wait() {
        case let .success(port): return port
        case let .failure(error):
            throw RelayError.controlListenFailed(address: display, reason: Self.describe(error))
        }
    }

    func stop() {
        Self.blockingAwait { [server] in await server.stop(timeout: 0) }
        task?.cancel()
    }

    private static func describe(_ error: Error) -> String {
        if let e = error as? SocketError, case let .failed(_, errno, message) = e {
            return "\(message) (errno \(errno))"
        }
        if let e = error as? RelayError, case let .controlListenFailed(_, reason) = e { return reason }
        return "\(error)"
    }

    /// Runs async work from synchronous code (the relay's setup runs on the thread that
    /// later runs the GLib main loop, outside Swift concurrency).
    private static func blockingAwait(_ body: @escaping @Sendable () async -> Void) {
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            await body()
            done.signal()
        }
        done.wait()
    }

    /// The first result of two racing tasks.
    private final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var result: Result<UInt16, Error>?
        private let ready = DispatchSemaphore(value: 0)

        func finish(_ r: Result<UInt16, Error>) {
            let first = lock.withLock { () -> Bool in
                guard result == nil else { return false }
                result = r
                return true
            }
            if first { ready.signal() }
        }

        func wait() -> Result<UInt16, Error> {
            ready.wait()
            return lock.withLock { result! }
        }
    }
}

private func addressText(_ address: HTTPRequest.Address?) -> String {
    switch address {
    case let .ip4(host, port)?: return "\(host):\(port)"
    case let .ip6(host, port)?: return "[\(host)]:\(port)"
    case let .unix(path)?: return path
    case nil: return "?"
    }
}

/// FlyingFox's log lines into swift-log (at debug: one line per request).
struct FlyingFoxLog: FlyingSocks.Logging {
    let logger: Logger
    func logDebug(_ debug: @autoclosure () -> String) { logger.trace("\(debug())") }
    func logInfo(_ info: @autoclosure () -> String) { logger.debug("\(info())") }
    func logWarning(_ warning: @autoclosure () -> String) { logger.warning("\(warning())") }
    // Errors of single connections (a client hanging up, connections cancelled by stop())
    // are not the relay's errors.
    func logError(_ error: @autoclosure () -> String) {
        let text = error()
        if text.contains("CancellationError") { logger.debug("\(text)") } else { logger.notice("\(text)") }
    }
    // Listening failures are thrown by start() and reported by the relay; stop() makes
    // run() end with a CancellationError that FlyingFox reports as critical.
    func logCritical(_ critical: @autoclosure () -> String) { logger.debug("\(critical())") }
}
