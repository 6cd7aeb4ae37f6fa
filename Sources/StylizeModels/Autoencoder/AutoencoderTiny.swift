import StylizeCore

/// diffusers `AutoencoderTinyBlock`: conv → act → conv → act → conv, plus a 1×1 skip
/// when channels change, fused with ReLU.
struct AutoencoderTinyBlock {
    let conv0: Conv2d
    let conv2: Conv2d
    let conv4: Conv2d
    let skip: Conv2d?
    let act: Activation

    init(_ w: Weights, inChannels: Int, outChannels: Int, act: Activation) throws {
        conv0 = try Conv2d(w["conv"]["0"], inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        conv2 = try Conv2d(w["conv"]["2"], inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        conv4 = try Conv2d(w["conv"]["4"], inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        skip = inChannels != outChannels
            ? try Conv2d(w["skip"], inChannels: inChannels, outChannels: outChannels, kernelSize: 1, bias: false) : nil
        self.act = act
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = conv0(x)
        act.apply(&h)
        h = conv2(h)
        act.apply(&h)
        h = conv4(h)
        addInPlace(&h, skip.map { $0(x) } ?? x)
        Activation.relu.apply(&h)
        return h
    }
}

/// One entry of EncoderTiny / DecoderTiny's `layers` nn.Sequential.
enum TinyLayer {
    case conv(Conv2d)
    case block(AutoencoderTinyBlock)
    case activation(Activation)
    case upsample(Int)
    /// `upsample(2)` and the 3×3 `conv` after it, run as one (UpsampledConvPlan).
    case upsampledConv(UpsampledConvPlan)

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .conv(let c): return c(x)
        case .block(let b): return b(x)
        case .activation(let a):
            var y = x
            a.apply(&y)
            return y
        case .upsample(let f): return upsampleNearest(x, height: x.h * f, width: x.w * f)
        case .upsampledConv(let plan): return OpProfile.section(.convDirect) { plan(x) }
        }
    }

    /// The layers with each 2× upsample and the narrow 3×3 convolution after it fused
    /// (after loading: the weights' names count the unfused nn.Sequential entries).
    static func fusingUpsampledConvolutions(_ layers: [TinyLayer]) -> [TinyLayer] {
        var fused: [TinyLayer] = []
        var i = 0
        while i < layers.count {
            if case .upsample(2) = layers[i], i + 1 < layers.count, case .conv(let c) = layers[i + 1],
               let plan = UpsampledConvPlan(c.kernel) {
                fused.append(.upsampledConv(plan))
                i += 2
            } else {
                fused.append(layers[i])
                i += 1
            }
        }
        return fused
    }
}

/// diffusers `EncoderTiny`: images in [-1, 1] are mapped to [0, 1] (TAESD convention),
/// then conv, [stride-2 conv, blocks]…, conv to latent channels.
public struct EncoderTiny: Sendable {
    let layers: [TinyLayer]

    init(_ w: Weights, inChannels: Int, outChannels: Int, numBlocks: [Int], blockOutChannels: [Int],
         act: Activation) throws {
        var layers: [TinyLayer] = []
        func next() -> Weights { w["layers"]["\(layers.count)"] }
        for (i, count) in numBlocks.enumerated() {
            let channels = blockOutChannels[i]
            if i == 0 {
                layers.append(.conv(try Conv2d(next(), inChannels: inChannels, outChannels: channels, kernelSize: 3, padding: 1)))
            } else {
                layers.append(.conv(try Conv2d(next(), inChannels: channels, outChannels: channels, kernelSize: 3,
                                               stride: 2, padding: 1, bias: false)))
            }
            for _ in 0..<count {
                layers.append(.block(try AutoencoderTinyBlock(next(), inChannels: channels, outChannels: channels, act: act)))
            }
        }
        layers.append(.conv(try Conv2d(next(), inChannels: blockOutChannels.last!, outChannels: outChannels,
                                       kernelSize: 3, padding: 1)))
        self.layers = layers
    }

    public func callAsFunction(_ image: Tensor) -> Tensor {
        var x = image
        affineInPlace(&x, scale: 0.5, shift: 0.5)
        for layer in layers { x = layer(x) }
        return x
    }
}

/// diffusers `DecoderTiny`: tanh(x/3)·3 clamp, conv + act, [blocks, upsample, conv]…,
/// and the output mapped from [0, 1] back to [-1, 1].
public struct DecoderTiny: Sendable {
    let layers: [TinyLayer]

    init(_ w: Weights, inChannels: Int, outChannels: Int, numBlocks: [Int], blockOutChannels: [Int],
         upsamplingScalingFactor: Int, act: Activation) throws {
        var layers: [TinyLayer] = []
        func next() -> Weights { w["layers"]["\(layers.count)"] }
        layers.append(.conv(try Conv2d(next(), inChannels: inChannels, outChannels: blockOutChannels[0],
                                       kernelSize: 3, padding: 1)))
        layers.append(.activation(act))
        for (i, count) in numBlocks.enumerated() {
            let isFinal = i == numBlocks.count - 1
            let channels = blockOutChannels[i]
            for _ in 0..<count {
                layers.append(.block(try AutoencoderTinyBlock(next(), inChannels: channels, outChannels: channels, act: act)))
            }
            if !isFinal { layers.append(.upsample(upsamplingScalingFactor)) }
            layers.append(.conv(try Conv2d(next(), inChannels: channels, outChannels: isFinal ? outChannels : channels,
                                           kernelSize: 3, padding: 1, bias: isFinal)))
        }
        self.layers = TinyLayer.fusingUpsampledConvolutions(layers)
    }

    public func callAsFunction(_ latent: Tensor) -> Tensor {
        var x = latent
        Activation.tanh.apply(&x, inputScale: 1.0 / 3, outputScale: 3)
        for layer in layers { x = layer(x) }
        affineInPlace(&x, scale: 2, shift: -1)
        return x
    }
}

/// diffusers `AutoencoderTiny`. `encode` / `decode` return exactly what diffusers'
/// `encode(x).latents` / `decode(z).sample` return: raw latents, no scaling_factor
/// (pipelines apply that) and no latent_magnitude/latent_shift (those belong to
/// `scale_latents` / `unscale_latents`, offered separately for 8-bit storage).
public final class AutoencoderTiny: LatentCodec {
    public let config: AutoencoderTinyConfig
    public let encoder: EncoderTiny
    public let decoder: DecoderTiny

    public init(config c: AutoencoderTinyConfig, weights w: Weights) throws {
        config = c
        encoder = try EncoderTiny(w["encoder"], inChannels: c.inChannels, outChannels: c.latentChannels,
                                  numBlocks: c.numEncoderBlocks, blockOutChannels: c.encoderBlockOutChannels, act: c.act)
        decoder = try DecoderTiny(w["decoder"], inChannels: c.latentChannels, outChannels: c.outChannels,
                                  numBlocks: c.numDecoderBlocks, blockOutChannels: c.decoderBlockOutChannels,
                                  upsamplingScalingFactor: c.upsamplingScalingFactor, act: c.act)
    }

    public convenience init(directory: String) throws {
        let (config, source) = try openComponent(directory, AutoencoderTinyConfig.init(file:))
        try self.init(config: config, weights: Weights(source))
        try source.checkAllUsed()
    }

    public var imageChannels: Int { config.inChannels }
    public var outputChannels: Int { config.outChannels }
    public var latentChannels: Int { config.latentChannels }
    public var downscale: Int { config.downscale }
    public var scalingFactor: Float { config.scalingFactor }

    /// NHWC image in [-1, 1] → NHWC latent.
    public func encode(_ image: Tensor) throws -> Tensor {
        guard image.rank == 4, image.c == config.inChannels else {
            throw ModelError.invalidInput(name: "image", reason: "has shape \(image.shape) (NHWC), expected \(config.inChannels) channels")
        }
        return encoder(image)
    }

    /// NHWC latent → NHWC image in about [-1, 1].
    public func decode(_ latent: Tensor) throws -> Tensor {
        guard latent.rank == 4, latent.c == config.latentChannels else {
            throw ModelError.invalidInput(name: "latent", reason: "has shape \(latent.shape) (NHWC), expected \(config.latentChannels) channels")
        }
        return decoder(latent)
    }

    /// raw latents → [0, 1] (diffusers `scale_latents`).
    public func scaleLatents(_ x: Tensor) -> Tensor {
        var y = x
        let m = config.latentMagnitude, s = config.latentShift
        for i in 0..<y.count { y.data[i] = min(1, max(0, y.data[i] / (2 * m) + s)) }
        return y
    }

    /// [0, 1] → raw latents (diffusers `unscale_latents`).
    public func unscaleLatents(_ x: Tensor) -> Tensor {
        var y = x
        let m = config.latentMagnitude, s = config.latentShift
        for i in 0..<y.count { y.data[i] = (y.data[i] - s) * (2 * m) }
        return y
    }
}
