import StylizeCore

/// `torch.nn.Conv2d` loaded from `<prefix>.weight` / `<prefix>.bias`.
public struct Conv2d: Sendable {
    public let kernel: Conv2dKernel

    public init(_ w: Weights, inChannels: Int, outChannels: Int, kernelSize: Int,
                stride: Int = 1, padding: Int = 0, bias: Bool = true) throws {
        let weight = try w.load("weight", shape: [outChannels, inChannels, kernelSize, kernelSize])
        let b = bias ? try w.load("bias", shape: [outChannels], role: .bias) : nil
        kernel = Conv2dKernel(torchWeight: weight, bias: b, inChannels: inChannels, outChannels: outChannels,
                              kernelH: kernelSize, kernelW: kernelSize, stride: stride,
                              padding: (padding, padding, padding, padding))
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { kernel(x) }
}

/// `torch.nn.Linear` loaded from `<prefix>.weight` ([out, in]) / `<prefix>.bias`.
public struct Linear: Sendable {
    public let kernel: LinearKernel

    public init(_ w: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        let weight = try w.load("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try w.load("bias", shape: [outFeatures], role: .bias) : nil
        kernel = LinearKernel(weight: weight, bias: b, inFeatures: inFeatures, outFeatures: outFeatures)
    }

    public init(kernel: LinearKernel) { self.kernel = kernel }

    public func callAsFunction(_ x: Tensor) -> Tensor { kernel(x) }
}

/// `torch.nn.GroupNorm` (affine) over NHWC.
public struct GroupNorm: Sendable {
    public let kernel: GroupNormKernel

    public init(_ w: Weights, groups: Int, channels: Int, eps: Float) throws {
        guard groups > 0, channels % groups == 0 else {
            throw ModelError.invalidConfig(file: w.prefix, key: "norm_num_groups",
                                           reason: "\(channels) channels are not divisible into \(groups) groups")
        }
        kernel = GroupNormKernel(
            groups: groups, channels: channels, eps: eps,
            gamma: try w.load("weight", shape: [channels], role: .normWeight),
            beta: try w.load("bias", shape: [channels], role: .normBias))
    }

    public func callAsFunction(_ x: Tensor, activation: Activation = .identity) -> Tensor {
        kernel(x, activation: activation)
    }
}

/// `torch.nn.LayerNorm` over the last dimension.
public struct LayerNorm: Sendable {
    public let kernel: LayerNormKernel

    public init(_ w: Weights, dim: Int, eps: Float, affine: Bool = true) throws {
        kernel = LayerNormKernel(
            dim: dim, eps: eps,
            gamma: affine ? try w.load("weight", shape: [dim], role: .normWeight) : nil,
            beta: affine ? try w.load("bias", shape: [dim], role: .normBias) : nil)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { kernel(x) }
}
