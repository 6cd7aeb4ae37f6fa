import CGStreamer
import CGstCheck
import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport
@testable import GstStylize

/// The acceptance run of remote conditioning with a real inference server: Seldon MLServer
/// (PyPI) serving the embedded model's text encoder through deploy/encoder's runtime, on
/// loopback, started and killed by the test. It needs Python with mlserver, torch and
/// transformers (tools' virtual environment: `.venv-tools/bin/mlserver`, or
/// $STYLIZE_MLSERVER), which the README's test command and CI do not install: there it is
/// skipped, and RemoteConditioningElementTests runs the same steps against the loopback
/// server in Tests/StylizeTestSupport.
final class MLServerEndToEndTests: XCTestCase {
    override func setUp() {
        super.setUp()
        Gst.setUp()
    }

    private let spec = FrameSpec(format: "RGB", width: 64, height: 64)
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// MLServer on `port`, serving models/nano as "nano".
    private final class Server {
        let process = Process()
        let folder: String
        init(mlserver: String, port: Int) throws {
            folder = NSTemporaryDirectory() + "mlserver-\(getpid())-\(UUID().uuidString)"
            try? FileManager.default.removeItem(atPath: folder)
            try FileManager.default.createDirectory(atPath: folder + "/nano", withIntermediateDirectories: true)
            try #"{"http_port": \#(port), "grpc_port": \#(port + 1), "metrics_port": \#(port + 2), "parallel_workers": 0}"#
                .write(toFile: folder + "/settings.json", atomically: true, encoding: .utf8)
            let model = MLServerEndToEndTests.root.appendingPathComponent("models/nano").path
            try #"{"name": "nano", "implementation": "stylize_encoder.StylizeTextEncoder", "parameters": {"uri": "\#(model)"}}"#
                .write(toFile: folder + "/nano/model-settings.json", atomically: true, encoding: .utf8)
            process.executableURL = URL(fileURLWithPath: mlserver)
            process.arguments = ["start", folder]
            // MLServer writes its metrics folder (.metrics) into the working directory.
            process.currentDirectoryURL = URL(fileURLWithPath: folder)
            var env = ProcessInfo.processInfo.environment
            env["PYTHONPATH"] = MLServerEndToEndTests.root.appendingPathComponent("deploy/encoder").path
            env["STYLIZE_ENCODER_THREADS"] = "1"
            process.environment = env
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try process.run()
        }

        func kill() {
            guard process.isRunning else { return }
            Glibc.kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }

        deinit {
            kill()
            try? FileManager.default.removeItem(atPath: folder)
        }
    }

    private func waitReady(_ client: OpenInferenceClient, _ seconds: TimeInterval) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        while Date() < deadline {
            if client.isReady() { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }

    private func assertClose(_ a: [[UInt8]], _ b: [[UInt8]], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let worst = zip(a, b).map { x, y in zip(x, y).map { abs(Int($0) - Int($1)) }.max() ?? 0 }.max() ?? 0
        // The server's float32 PyTorch forward differs from the Swift one in the last bits.
        XCTAssertLessThanOrEqual(worst, 2, "\(what): frames differ by up to \(worst)/255", file: file, line: line)
    }

    func testTwoElementsOnMLServerFollowAPromptChangeSurviveAKillAndRecover() throws {
        let mlserver = ProcessInfo.processInfo.environment["STYLIZE_MLSERVER"]
            ?? Self.root.appendingPathComponent(".venv-tools/bin/mlserver").path
        guard FileManager.default.isExecutableFile(atPath: mlserver) else {
            throw XCTSkip("no MLServer at \(mlserver) (pip install mlserver torch transformers, or set STYLIZE_MLSERVER)")
        }
        let saved = StreamEngineFactory.make
        StylizeEngine.installAsDefaultFactory()
        defer { StreamEngineFactory.make = saved }
        let port = 18_480 + Int(getpid() % 500) * 4
        let url = "http://127.0.0.1:\(port)"
        let client = OpenInferenceClient(server: URL(string: url)!, model: "nano", timeout: 2)
        var server: Server? = try Server(mlserver: mlserver, port: port)
        XCTAssertTrue(waitReady(client, 90), "MLServer did not become ready")

        let model = Self.root.appendingPathComponent("models/nano").path
        // The conditioning itself: the server's PyTorch forward against the local Swift one,
        // for a prompt with a frame (pixel_values) and one without.
        let local_ = try StylizeModel(path: model).conditioning
        let backend = RemoteConditioningBackend(client: client, encoder: local_)
        var rng = SplitMix64(seed: 5)
        let frame = RGBImage(width: 96, height: 64, pixels: (0..<(96 * 64 * 3)).map { _ in UInt8(rng.next() % 256) })
        let prompts = ["pop art", "an ink drawing"]
        let remoteTensors = try backend.encode(prompts: prompts, frames: [frame, nil])
        let localTensor: Tensor = try local_.encode(prompts: prompts, frames: [frame, nil])
        for (b, r) in remoteTensors.enumerated() {
            let per = r.count
            let expected = Tensor(shape: r.shape, data: Array(localTensor.data.array[(b * per)..<((b + 1) * per)]))
            XCTAssertLessThan(r.maxAbsDifference(expected), 1e-3, "conditioning of '\(prompts[b])' (max |x| \(expected.data.array.map(abs).max()!))")
        }
        let base: [(String, String)] = [("model", model), ("batch-size", "2"), ("refresh-interval", "0"), ("prompt", "pop art")]
        let local = try Harness(base)
        let elements = [try Harness(base + [("conditioning-server", url), ("conditioning-model", "nano")]),
                        try Harness(base + [("conditioning-server", url), ("conditioning-model", "nano")])]
        defer { (elements + [local]).forEach { $0.teardown() } }
        for h in elements + [local] { h.setCaps(spec) }

        var frames = 0
        let first = local.pushAndPull(spec, 0..<4)
        for h in elements { assertClose(h.pushAndPull(spec, 0..<4), first, "pop art") }
        frames = 4
        for h in elements + [local] { setProperty(h.element, "prompt", "a pencil sketch") }
        for h in elements + [local] { XCTAssertTrue(h.conditioningActivated("a pencil sketch", timeout: 30)) }
        let sketch = local.pushAndPull(spec, frames..<(frames + 4))
        for h in elements { assertClose(h.pushAndPull(spec, frames..<(frames + 4)), sketch, "a pencil sketch") }
        frames += 4

        // Killed: the frames keep coming with the last conditioning; each element warns.
        server?.kill()
        for h in elements { setProperty(h.element, "prompt", "neon glow") }
        let stillSketch = local.pushAndPull(spec, frames..<(frames + 6))
        for h in elements {
            XCTAssertTrue(h.waitForMessage(GST_MESSAGE_WARNING, timeout: 20), "a warning on the bus")
            assertClose(h.pushAndPull(spec, frames..<(frames + 6)), stillSketch, "no frame lost, the last conditioning kept")
        }
        frames += 6

        // Restarted: both take the new prompt within 10 s of the server being ready.
        server = try Server(mlserver: mlserver, port: port)
        XCTAssertTrue(waitReady(client, 90), "MLServer did not restart")
        let ready = Date()
        for h in elements { XCTAssertTrue(h.conditioningActivated("neon glow", timeout: 10)) }
        XCTAssertLessThan(Date().timeIntervalSince(ready), 10)
        setProperty(local.element, "prompt", "neon glow")
        XCTAssertTrue(local.conditioningActivated("neon glow", timeout: 30))
        let neon = local.pushAndPull(spec, frames..<(frames + 2))
        for h in elements { assertClose(h.pushAndPull(spec, frames..<(frames + 2)), neon, "neon glow") }
        server = nil
    }
}
