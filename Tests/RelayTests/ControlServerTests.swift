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

    private final class Replies: @unchecked Sendable {
        private let lock = NSLock()
        private var statuses: [Int?] = []
        func record(_ s: Int?) { lock.withLock { statuses.append(s) } }
        var all: [Int?] { lock.withLock { statuses } }
    }
}
