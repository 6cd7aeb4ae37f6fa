// A Swift program that embeds the engine directly: no GStreamer, only the `StylizeEngine`
// library product. It restyles a few frames under one prompt, switches the prompt the
// way a live app does (setPrompt returns at once; the new conditioning is encoded on the
// engine's side thread and announced by onConditioningActivated), restyles the same
// frames again and checks what came back.
//
//     swift run -c release stylize-embed-example [--model DIR] [--input IN.png]
//         [--output-dir DIR] [--frames N] [--first-prompt TEXT] [--second-prompt TEXT]
//
// The model defaults to $STYLIZE_MODEL_DIR, else models/nano under the current folder
// (run it from the repository root). Without --input the frames are synthetic. Prints
// one JSON report and exits with status 1 when a check fails: every frame comes back at
// its size, the second prompt becomes active, and the frames under the second prompt
// differ clearly from those under the first.
import Foundation
import StylizeEngine

struct Options {
    var model = ProcessInfo.processInfo.environment["STYLIZE_MODEL_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "models/nano"
    var input: String?
    var outputDir: String?
    var frames = 4
    var firstPrompt = "a pencil sketch"
    var secondPrompt = "neon glow"

    struct UsageError: Error, CustomStringConvertible { var description: String }

    init(_ arguments: [String]) throws {
        var it = arguments.makeIterator()
        while let flag = it.next() {
            guard let value = it.next() else { throw UsageError(description: "\(flag) needs a value") }
            switch flag {
            case "--model": model = value
            case "--input": input = value
            case "--output-dir": outputDir = value
            case "--frames":
                guard let n = Int(value), n > 0 else { throw UsageError(description: "--frames: '\(value)' is not a positive number") }
                frames = n
            case "--first-prompt": firstPrompt = value
            case "--second-prompt": secondPrompt = value
            default: throw UsageError(description: "unknown option \(flag)")
            }
        }
    }
}

/// Synthetic frames: colour gradients with a square that moves.
func syntheticFrames(count: Int, width: Int = 128, height: Int = 96) -> [RGBImage] {
    (0..<count).map { i in
        let side = min(width, height) / 3
        let x0 = (i * 3) % max(1, width - side)
        var pixels = [UInt8](repeating: 128, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let p = (y * width + x) * 3
                let inSquare = (x0..<(x0 + side)).contains(x) && (height / 3..<(height / 3 + side)).contains(y)
                pixels[p] = inSquare ? 240 : UInt8(255 * x / max(1, width - 1))
                pixels[p + 1] = inSquare ? 230 : UInt8(255 * y / max(1, height - 1))
                pixels[p + 2] = inSquare ? 40 : 128
            }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}

/// The engine takes a batch as one NHWC tensor [B, H, W, 3] in [-1, 1].
func batch(_ frames: [RGBImage]) -> Tensor {
    let f = frames[0]
    return Tensor(shape: [frames.count, f.height, f.width, 3], data: frames.flatMap { $0.tensor.data })
}

func meanRGB(_ frames: [RGBImage]) -> [Double] {
    var sum = [0.0, 0.0, 0.0]
    for f in frames {
        for (i, v) in f.pixels.enumerated() { sum[i % 3] += Double(v) }
    }
    let n = Double(frames.reduce(0) { $0 + $1.width * $1.height })
    return sum.map { ($0 / n * 10).rounded() / 10 }
}

func meanAbsDifference(_ a: [RGBImage], _ b: [RGBImage]) -> Double {
    var total = 0.0, count = 0
    for (x, y) in zip(a, b) {
        for (p, q) in zip(x.pixels, y.pixels) { total += abs(Double(p) - Double(q)) }
        count += x.pixels.count
    }
    return count > 0 ? total / Double(count) : 0
}

/// Collects onConditioningActivated calls (made on the engine's side thread).
final class Activations: @unchecked Sendable {
    private let condition = NSCondition()
    private var seen: [(prompt: String, seconds: Double)] = []

    func record(_ prompt: String, _ seconds: Double) {
        condition.withLock { seen.append((prompt, seconds)); condition.broadcast() }
    }

    /// Seconds the prompt took to encode, or nil if it did not become active in time.
    func wait(for prompt: String, timeout: TimeInterval) -> Double? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        return condition.withLock {
            while true {
                if let hit = seen.first(where: { $0.prompt == prompt }) { return hit.seconds }
                if !condition.wait(until: deadline) { return nil }
            }
        }
    }
}

func run() throws -> Int32 {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    let inputs = try options.input.map { path in
        [RGBImage](repeating: try PNGCodec.read(path: path), count: options.frames)
    } ?? syntheticFrames(count: options.frames)

    // Loads the folder (several engines on one folder share the loaded model).
    let engine = try StylizeEngine(modelPath: options.model)
    let activations = Activations()
    engine.onConditioningActivated = { activations.record($0, $1) }
    engine.onError = { FileHandle.standardError.write(Data("conditioning failed: \($0)\n".utf8)) }

    var settings = StylizeSettings()
    settings.prompt = options.firstPrompt
    try engine.start(settings: settings)
    defer { engine.stop() }

    // The first batch waits for the first conditioning; later ones never wait.
    let before = try engine.process(batch(inputs), settings: settings)

    // A live prompt change: the settings carry the prompt into the next batches, and
    // setPrompt starts its encoding at once.
    settings.prompt = options.secondPrompt
    engine.setPrompt(options.secondPrompt)
    let encodeSeconds = activations.wait(for: options.secondPrompt, timeout: 60)
    let after = try engine.process(batch(inputs), settings: settings)

    let beforeFrames = (0..<before.n).map { RGBImage(tensor: before, index: $0) }
    let afterFrames = (0..<after.n).map { RGBImage(tensor: after, index: $0) }
    if let dir = options.outputDir {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (i, f) in beforeFrames.enumerated() { try PNGCodec.write(f, path: "\(dir)/first-\(i).png") }
        for (i, f) in afterFrames.enumerated() { try PNGCodec.write(f, path: "\(dir)/second-\(i).png") }
    }

    let colourBefore = meanRGB(beforeFrames), colourAfter = meanRGB(afterFrames)
    let colourDistance = sqrt(zip(colourBefore, colourAfter).map { ($0 - $1) * ($0 - $1) }.reduce(0, +))
    let frameDifference = meanAbsDifference(beforeFrames, afterFrames)
    let stats = engine.statistics.snapshot()
    let sizes = Set((beforeFrames + afterFrames).map { "\($0.width)x\($0.height)" }).sorted()
    let inputSize = "\(inputs[0].width)x\(inputs[0].height)"
    let report: [String: Any] = [
        "model": engine.model.path,
        "frames_in": 2 * inputs.count,
        "frames_out": beforeFrames.count + afterFrames.count,
        "sizes": sizes,
        "prompts": [options.firstPrompt, options.secondPrompt],
        "second_prompt_active": encodeSeconds != nil,
        "second_prompt_seconds": encodeSeconds ?? -1,
        "mean_rgb_before": colourBefore,
        "mean_rgb_after": colourAfter,
        "mean_colour_distance": (colourDistance * 10).rounded() / 10,
        "mean_abs_frame_difference": (frameDifference * 10).rounded() / 10,
        "stats_frames_out": stats.framesOut,
        "stats_latency_p50": stats.latencyP50,
    ]
    let json = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
    print(String(decoding: json, as: UTF8.self))

    var failures: [String] = []
    if beforeFrames.count + afterFrames.count != 2 * inputs.count {
        failures.append("\(2 * inputs.count) frames in, \(beforeFrames.count + afterFrames.count) out")
    }
    if sizes != [inputSize] { failures.append("output sizes \(sizes), expected \(inputSize)") }
    if encodeSeconds == nil { failures.append("'\(options.secondPrompt)' did not become active within 60 s") }
    // On 0-255 pixels: the same inputs under two different styles.
    if frameDifference < 10 || colourDistance < 10 {
        failures.append("the frames under the second prompt hardly differ from those under the first")
    }
    if stats.framesOut != 2 * inputs.count { failures.append("statistics count \(stats.framesOut) frames out") }
    for f in failures { FileHandle.standardError.write(Data("FAILED: \(f)\n".utf8)) }
    return failures.isEmpty ? 0 : 1
}

do {
    exit(try run())
} catch {
    FileHandle.standardError.write(Data("stylize-embed-example: \(error)\n".utf8))
    exit(1)
}
