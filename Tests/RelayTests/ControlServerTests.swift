import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import XCTest
@testable import StylizeRelay

/// The control endpoint on a real socket, with a recording stand-in for the element's
/// `prompt` property (no pipeline): bookkeeping under concurrent requests, size limits.
final class ControlServerTests: XCTestCase {
    private final class Applied: @unchecked Sendable {
        private let lock = NSLock()
        private var prompts: [String] = []
        func record(_ p: String) { lock.withLock { prompts.append(p) } }
        var all: [String] { lock.withLock { prompts } }
    }

    private func serve(_ applied: Applied, delay: ClosedRange<Double> = 0...0) throws -> (ControlServer, RelayStatus, String) {
        let status = RelayStatus(sourceDescription: "test", served: .init(url: "", width: 16, height: 16, framerate: 1, encoder: "none"),
                                 prompt: "initial")
        let server = try ControlServer(host: "127.0.0.1", port: 0, status: status, setPrompt: { prompt in
            // Setting the element's property takes a moment; requests overlap meanwhile.
            Thread.sleep(forTimeInterval: Double.random(in: delay))
            applied.record(prompt)
        }, logger: Logger(label: "test.control"))
        let port = try server.start()
        return (server, status, "http://127.0.0.1:\(port)")
    }

    /// Concurrent POST /prompt (issue 16: 50 of them left requested_prompt "prompt 47"
    /// while the stream ran "prompt 50"): after each burst, the prompt /status reports as
    /// requested is the one applied last.
    func testConcurrentPromptPostsRecordTheLastPromptApplied() throws {
        let applied = Applied()
        let (server, status, base) = try serve(applied, delay: 0...0.01)
        defer { server.stop() }
        for burst in 0..<10 {
            let replies = Replies()
            let done = DispatchGroup()
            for i in 0..<10 {
                done.enter()
                Thread.detachNewThread {
                    replies.record(HTTP.request(base + "/prompt", method: "POST", body: Data("prompt \(burst * 10 + i + 1)".utf8),
                                                contentType: "text/plain")?.status)
                    done.leave()
                }
            }
            done.wait()
            XCTAssertEqual(replies.all, Array(repeating: 202, count: 10))
            let requested = status.snapshot().requestedPrompt
            XCTAssertEqual(requested, applied.all.last, "burst \(burst): applied \(applied.all.suffix(3))")
            let json = try XCTUnwrap(HTTP.json(base + "/status"))
            XCTAssertEqual(json["requested_prompt"] as? String, applied.all.last)
        }
        XCTAssertEqual(applied.all.count, 100)
    }

    /// Bodies over 64 KiB and prompts over 4096 bytes are refused with 413 and a JSON
    /// error naming the limit; nothing reaches the element. The limits themselves pass.
    func testOversizedBodiesAndPromptsAre413() throws {
        let applied = Applied()
        let (server, status, base) = try serve(applied)
        defer { server.stop() }
        func post(_ body: Data, _ type: String = "text/plain") throws -> (Int, String) {
            let r = try XCTUnwrap(HTTP.request(base + "/prompt", method: "POST", body: body, contentType: type, timeout: 30))
            let error = (try? JSONSerialization.jsonObject(with: r.body) as? [String: Any])?["error"] as? String
            return (r.status, error ?? "")
        }
        let huge = try post(Data(repeating: UInt8(ascii: "a"), count: 20 << 20))
        XCTAssertEqual(huge.0, 413)
        XCTAssertTrue(huge.1.contains("65536"), huge.1)
        let long = try post(Data(String(repeating: "b", count: 5000).utf8))
        XCTAssertEqual(long.0, 413)
        XCTAssertTrue(long.1.contains("5000") && long.1.contains("4096"), long.1)
        let longJSON = try post(try JSONSerialization.data(withJSONObject: ["prompt": String(repeating: "é", count: 2049)]), "application/json")
        XCTAssertEqual(longJSON.0, 413, "4098 bytes of UTF-8")
        XCTAssertEqual(applied.all, [])
        XCTAssertEqual(status.snapshot().requestedPrompt, "initial")

        let atLimit = String(repeating: "c", count: PromptRequest.maxPromptBytes)
        XCTAssertEqual(try post(Data(atLimit.utf8)).0, 202)
        XCTAssertEqual(applied.all, [atLimit])
        // Still serving after the refusals.
        XCTAssertEqual(try post(Data("small".utf8)).0, 202)
    }

    /// The body reader stops at the limit: from Content-Length alone when given (the
    /// body is not read), otherwise once more than the limit has arrived.
    func testBodyReaderStopsAtTheLimit() async throws {
        let limit = PromptRequest.maxBodyBytes
        XCTAssertEqual(limit, 64 * 1024)
        let pulled = Counter()
        func chunks(_ n: Int, size: Int) -> AsyncStream<Data> {
            AsyncStream { continuation in
                for _ in 0..<n { continuation.yield(Data(count: size)) }
                continuation.finish()
            }
        }
        func counted(_ stream: AsyncStream<Data>) -> AsyncMapSequence<AsyncStream<Data>, Data> {
            stream.map { pulled.add(); return $0 }
        }
        let declared = try await PromptRequest.readBody(counted(chunks(1, size: 10)), contentLength: "20971520")
        XCTAssertEqual(declared, .failure(.bodyTooLarge(limit: limit)))
        XCTAssertEqual(pulled.value, 0, "refused from Content-Length without reading")
        let streamed = try await PromptRequest.readBody(counted(chunks(1000, size: 4096)), contentLength: nil)
        XCTAssertEqual(streamed, .failure(.bodyTooLarge(limit: limit)))
        XCTAssertEqual(pulled.value, 17, "stops at the first chunk past 64 KiB")
        let fits = try await PromptRequest.readBody(chunks(16, size: 4096), contentLength: nil)
        XCTAssertEqual(try fits.get().count, limit)
        XCTAssertEqual(PromptRequest.parse(body: Data(count: limit + 1), contentType: nil), .failure(.bodyTooLarge(limit: limit)))
    }

    private final class Replies: @unchecked Sendable {
        private let lock = NSLock()
        private var statuses: [Int?] = []
        func record(_ s: Int?) { lock.withLock { statuses.append(s) } }
        var all: [Int?] { lock.withLock { statuses } }
    }

    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var n = 0
        func add() { lock.withLock { n += 1 } }
        var value: Int { lock.withLock { n } }
    }
}
