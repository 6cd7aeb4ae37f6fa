import ArgumentParser
import Foundation
import StylizeModels

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time one component and compare it with OpenBLAS sgemm measured in the same run.",
        discussion: """
        Prints the median time per call over --repeats runs (after one warm-up), the effective
        GFLOP/s (FLOPs of direct convolution and plain attention, counted on one call), and the
        ratio to OpenBLAS sgemm GFLOP/s measured in the same process. --size is the IMAGE size:
        the U-Net runs on latents of size/8, vae-decode decodes latents of size/8 to it.
        text-encoder encodes --batch prompts of --tokens random text tokens, plus with --image
        one synthetic image per prompt through the Qwen3-VL image processor (its placeholder
        tokens come on top of --tokens).
        element runs the stylize element itself (linked into this process) in
        videotestsrc ! RGBx ! stylize ! fakesink sync=false and prints fps, p50/p95 frame
        latency (chain to push), the per-stage split and whether the hot path allocated;
        --size is the frame size.
        --control FILE attaches a ControlNet-LLLite: unet times calls with and without it,
        interleaved, and prints the added time; element sets the element's control property
        (with --control-refresh-interval).
        flow times Farnebäck optical flow (calcOpticalFlowFarneback's parameters of the video
        style-transfer work) on a synthetic pair at --size, half and quarter of it (at least 30
        runs each), and the backward warp at --size; it needs no --model.
        """)

    enum Component: String, ExpressibleByArgument, CaseIterable {
        case unet, vaeEncode = "vae-encode", vaeDecode = "vae-decode", textEncoder = "text-encoder", element, flow
    }

    @Argument(help: "unet | vae-encode | vae-decode | text-encoder | element | flow")
    var component: Component
    @Option(help: "Component folder (config.json + *.safetensors); not for flow.")
    var model: String?
    @Option(help: "Batch size.")
    var batch: Int = 1
    @Option(help: "Image size HxW.")
    var size: String = "256x256"
    @Option(help: "Text tokens: encoder_hidden_states length (unet) or prompt length (text-encoder).")
    var tokens: Int = 77
    @Option(help: "text-encoder (Qwen3-VL): also encode one synthetic image of this size, e.g. 256x256.")
    var image: String?
    @Option(help: "Timed runs (median reported).")
    var repeats: Int = 3
    @Option(help: "Threads (default: all cores).")
    var threads: Int?
    @Option(help: "element: frames to run (after three warm-up batches).")
    var frames: Int = 96
    @Option(help: "element: frames between re-encodings of the prompt with a fresh frame on the side thread (0: the encoder stays idle).")
    var refreshInterval: Int = 30
    @Option(help: "unet / element: a ControlNet-LLLite (.safetensors) to attach.")
    var control: String?
    @Option(help: "element: batches between re-computations of the control conditioning.")
    var controlRefreshInterval: Int?
    @Option(name: .customLong("property"), help: "element: one more element property, NAME=VALUE (repeatable), e.g. working-scale=0.5.")
    var properties: [String] = []
    @Flag(help: "Also print where one call's time goes, per kind of operation.")
    var profile = false
    @Flag(help: "Keep every 3x3 convolution on im2col + sgemm (no Winograd), for A/B runs.")
    var noWinograd = false
    @Flag(help: "Use Winograd F(2x2,3x3) only (no F(4x4,3x3)), for A/B runs.")
    var noLargeWinograd = false

    func run() throws {
        try reportingErrors {
            if let threads {
                ThreadBudget.threads = threads
            }
            let parts = size.lowercased().split(separator: "x").compactMap { Int($0) }
            guard parts.count == 2, parts[0] > 0, parts[1] > 0 else {
                throw ValidationError("--size must look like 256x256")
            }
            let (height, width) = (parts[0], parts[1])
            var imageSize: (Int, Int)? = nil
            if let image {
                let p = image.lowercased().split(separator: "x").compactMap { Int($0) }
                guard p.count == 2, p[0] > 0, p[1] > 0 else { throw ValidationError("--image must look like 256x256") }
                imageSize = (p[0], p[1])
            }
            if noWinograd { Conv2dKernel.winogradEnabled = false }
            if noLargeWinograd { Conv2dKernel.largeWinogradEnabled = false }
            var rng = SplitMix64(seed: 1)
            func random(_ shape: [Int]) -> Tensor {
                Tensor(shape: shape, data: (0..<shape.reduce(1, *)).map { _ in rng.normal() })
            }
            if component == .flow {
                FlowBench.run(width: width, height: height, repeats: repeats)
                return
            }
            guard let model else { throw ValidationError("bench \(component.rawValue) needs --model") }
            if component == .element {
                try ElementBench.run(model: model, width: width, height: height, batch: batch, frames: frames,
                                     refreshInterval: refreshInterval, threads: threads, control: control,
                                     controlRefreshInterval: controlRefreshInterval, properties: properties)
                return
            }
            var call: () throws -> Void
            var withoutControl: (() throws -> Void)? = nil
            switch component {
            case .unet:
                let unet = try UNet2DConditionModel(directory: model)
                let c = unet.config
                var inputs = DenoiserInputs(
                    sample: random([batch, height / 8, width / 8, c.inChannels]),
                    timesteps: Array(repeating: 999, count: batch),
                    encoderHiddenStates: random([batch, tokens, c.encoderHidDim ?? c.crossAttentionDim[0]]))
                if let d = c.timeCondProjDim { inputs.timestepCond = random([batch, d]) }
                if c.additionEmbedType == "text_time", let a = c.additionTimeEmbedDim,
                   let p = c.projectionClassEmbeddingsInputDim {
                    inputs.timeIds = random([batch, 6])
                    inputs.textEmbeds = random([batch, p - 6 * a])
                }
                call = { _ = try unet(inputs) }
                if let control {
                    // The conditioning network runs once here, as the element runs it once per refresh.
                    let adapter = try ControlNetLLLite(file: control, denoiser: unet, imageDownscale: 8, blocks: .all)
                    let plain = inputs
                    inputs.linearHooks = try adapter.condition(images: random([batch, height, width, 3]),
                                                               latentHeight: height / 8, latentWidth: width / 8)
                        .hooks(multiplier: 1)
                    let hooked = inputs
                    call = { _ = try unet(hooked) }
                    withoutControl = { _ = try unet(plain) }
                }
            case .vaeEncode:
                let vae = try ComponentRegistry.load(directory: model, as: (any LatentCodec).self, role: "latent codec")
                let image = random([batch, height, width, vae.imageChannels])
                call = { _ = try vae.encode(image) }
            case .vaeDecode:
                let vae = try ComponentRegistry.load(directory: model, as: (any LatentCodec).self, role: "latent codec")
                let s = vae.downscale
                let latent = random([batch, height / s, width / s, vae.latentChannels])
                call = { _ = try vae.decode(latent) }
            case .element, .flow:
                return
            case .textEncoder:
                let encoder = try TextEncoder.load(directory: model)
                let (tokens, images) = try TextEncoderBenchInput.make(
                    encoder: encoder, directory: model, batch: batch, textTokens: tokens, image: imageSize, rng: &rng)
                call = { _ = try encoder(tokens, images: images) }
            }
            let flops = try FlopCounter.count(call)  // doubles as warm-up
            try withoutControl?()
            func timed(_ f: () throws -> Void) throws -> Double {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try f()
                return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            }
            var times: [Double] = []
            var plainTimes: [Double] = []
            for _ in 0..<max(1, repeats) {
                times.append(try timed(call))
                if let withoutControl { plainTimes.append(try timed(withoutControl)) }  // interleaved A/B
            }
            times.sort()
            plainTimes.sort()
            let median = times[times.count / 2]
            let effective = Double(flops) / median / 1e9
            let peak = BLAS.measureSgemmPeak()
            print("component     \(component.rawValue)  (\(model))")
            switch component {
            case .textEncoder:
                print("shape         batch \(batch), \(tokens) text tokens\(imageSize.map { ", one \($0.0)x\($0.1) image per prompt" } ?? "")")
            default:
                print("shape         batch \(batch), image \(height)x\(width)\(component == .unet ? ", \(tokens) tokens" : "")")
            }
            print("threads       \(ThreadBudget.threads) (GEMMs split over them by the engine; the sgemm peak is OpenBLAS's own threading)")
            print(String(format: "time/call     %.3f s median (min %.3f, max %.3f, %d runs); %.3f s per frame",
                         median, times.first!, times.last!, times.count, median / Double(batch)))
            print(String(format: "work          %.2f GFLOP per call (direct conv + plain attention)", Double(flops) / 1e9))
            print(String(format: "effective     %.1f GFLOP/s", effective))
            print(String(format: "sgemm peak    %.1f GFLOP/s (OpenBLAS, 1536^3, same run)", peak))
            print(String(format: "ratio         %.1f%% of sgemm peak", 100 * effective / peak))
            if !plainTimes.isEmpty {
                let plain = plainTimes[plainTimes.count / 2]
                print(String(format: "control       %.3f s with the LLLite, %.3f s without (interleaved medians): +%.1f%%",
                             median, plain, 100 * (median / plain - 1)))
            }
            if profile {
                let (kinds, total) = try OpProfile.measure(call)
                print(String(format: "profile       one call, %.3f s:", total))
                let listed = kinds.reduce(0) { $0 + $1.1 }
                for (kind, seconds) in kinds.sorted(by: { $0.1 > $1.1 }) + [(nil, total - listed)] {
                    let name = kind?.rawValue ?? "other (element-wise, copies)"
                    print("  " + name.padding(toLength: 30, withPad: " ", startingAt: 0)
                          + String(format: "%7.3f s  %5.1f%%", seconds, 100 * seconds / total))
                }
            }
        }
    }
}
