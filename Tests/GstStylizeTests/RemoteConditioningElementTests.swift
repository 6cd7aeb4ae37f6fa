import CGStreamer
import CGstCheck
import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport
@testable import GstStylize

/// Two elements encoding their prompts on one loopback Open Inference Protocol server
/// (`conditioning-server`): a prompt change reaches both, their frames equal those of an
/// element encoding locally, and while the server is down no frame is lost, each posts a
/// warning and keeps its last conditioning, then recovers once the server is back.
final class RemoteConditioningElementTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    private let spec = FrameSpec(format: "RGB", width: 32, height: 32)

    func testTwoElementsShareAServerSurviveItsOutageAndRecover() throws {
        let real = try RealEngineFixture(mode: .sdedit)
        defer { real.restore() }
        let model = real.model
        let server = LoopbackInferenceServer(encoder: try StylizeModel(path: model).conditioning, model: "tiny")
        try server.start()
        defer { server.stop() }

        let base: [(String, String)] = [("model", model), ("batch-size", "2"), ("refresh-interval", "0"), ("prompt", "first")]
        let local = try Harness(base)
        let remote = [("conditioning-server", server.url.absoluteString), ("conditioning-model", "tiny")]
        let elements = [try Harness(base + remote), try Harness(base + remote)]
        defer { (elements + [local]).forEach { $0.teardown() } }
        for h in elements + [local] { h.setCaps(spec) }

        var frames = 0
        let expected = local.pushAndPull(spec, 0..<4)
        for h in elements { XCTAssertEqual(h.pushAndPull(spec, 0..<4), expected, "the server's conditioning gives the local encoder's frames") }
        frames = 4

        // A prompt change reaches both; each prompt is requested once.
        for h in elements + [local] { setProperty(h.element, "prompt", "second") }
        for h in elements + [local] { XCTAssertTrue(h.conditioningActivated("second", timeout: 20)) }
        let second = local.pushAndPull(spec, frames..<(frames + 4))
        for h in elements { XCTAssertEqual(h.pushAndPull(spec, frames..<(frames + 4)), second) }
        frames += 4
        XCTAssertEqual(server.requests.withLock { $0 }, 4, "one request per prompt and element")
        // Back to a prompt each element has encoded: served from its cache, never requested again.
        for h in elements { setProperty(h.element, "prompt", "first") }
        for h in elements { XCTAssertTrue(h.conditioningActivated("first", timeout: 5)) }
        for h in elements { setProperty(h.element, "prompt", "second") }
        for h in elements { XCTAssertTrue(h.conditioningActivated("second", timeout: 5)) }
        XCTAssertEqual(server.requests.withLock { $0 }, 4, "cached prompts are not requested again")

        // The server goes away: a new prompt cannot be encoded, the frames keep coming with
        // the last conditioning, and each element warns.
        server.stop()
        for h in elements { setProperty(h.element, "prompt", "third") }
        let stillSecond = local.pushAndPull(spec, frames..<(frames + 6))
        for h in elements {
            XCTAssertTrue(h.waitForMessage(GST_MESSAGE_WARNING, timeout: 15) { m in
                var error: UnsafeMutablePointer<GError>?
                gst_message_parse_warning(m, &error, nil)
                defer { g_error_free(error) }
                return error.map { String(cString: $0.pointee.message).contains("unreachable") } ?? false
            }, "a warning names the unreachable server")
            XCTAssertEqual(h.pushAndPull(spec, frames..<(frames + 6)), stillSecond,
                           "no frame lost, and the last good conditioning ('second') stays in use")
        }
        frames += 6

        // Back: both pick up the new prompt within 10 s.
        let back = Date()
        try server.start()
        for h in elements { XCTAssertTrue(h.conditioningActivated("third", timeout: 10)) }
        XCTAssertLessThan(Date().timeIntervalSince(back), 10)
        setProperty(local.element, "prompt", "third")
        XCTAssertTrue(local.conditioningActivated("third", timeout: 20))
        let third = local.pushAndPull(spec, frames..<(frames + 2))
        for h in elements { XCTAssertEqual(h.pushAndPull(spec, frames..<(frames + 2)), third) }
        XCTAssertNotEqual(third, Array(second.prefix(2)), "the prompts give different frames")
    }
}
