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
    /// Its weights' name without ".weight" (e.g. "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"):
    /// what an adapter's hook is attached by (`LinearInputHooks`).
    public let name: String

    public init(_ w: Weights, inFeatures: Int, outFeatures: Int, bias: Bool = true) throws {
        let weight = try w.load("weight", shape: [outFeatures, inFeatures])
        let b = bias ? try w.load("bias", shape: [outFeatures], role: .bias) : nil
        kernel = LinearKernel(weight: weight, bias: b, inFeatures: inFeatures, outFeatures: outFeatures)
        name = w.moduleName
    }

    public init(kernel: LinearKernel, name: String = "") {
        self.kernel = kernel
        self.name = name
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { kernel(x) }

    /// With an adapter's hook on this Linear, the hook adjusts the input first
    /// (ControlNet-LLLite adds its delta there); without one, the plain product.
    public func callAsFunction(_ x: Tensor, hooks: LinearInputHooks?) -> Tensor {
        guard let hook = hooks?[name] else { return kernel(x) }
        return kernel(hook(x))
    }
}

/// Changes a Linear's input before the product (an adapter's per-call state, e.g. the
/// conditioning embeddings of this batch's frames).
public protocol LinearInputHook: Sendable {
    /// `x` [B, T, in_features] → the input the Linear multiplies, same shape.
    func callAsFunction(_ x: Tensor) -> Tensor
    /// The hook for items `range` of a `batch`-sized call, run on their own
    /// (`DenoiserInputs.slicingBatch`). Hooks that treat every item alike return self.
    func slicingBatch(_ range: Range<Int>, of batch: Int) -> any LinearInputHook
}

extension LinearInputHook {
    public func slicingBatch(_ range: Range<Int>, of batch: Int) -> any LinearInputHook { self }
}

/// The hooks of one denoiser call, by Linear name. Passed down with the call (`UNetInputs`),
/// so one loaded model serves streams with and without adapters; nil costs one check
/// per hookable Linear.
public struct LinearInputHooks: Sendable {
    private let byName: [String: any LinearInputHook]

    public init(_ byName: [String: any LinearInputHook]) { self.byName = byName }

    public subscript(name: String) -> (any LinearInputHook)? { byName[name] }
    public var names: [String] { Array(byName.keys) }

    /// Every hook for items `range` of a `batch`-sized call.
    public func slicingBatch(_ range: Range<Int>, of batch: Int) -> LinearInputHooks {
        LinearInputHooks(byName.mapValues { $0.slicingBatch(range, of: batch) })
    }

    /// Both sets of hooks; on a Linear hooked by both, `other`'s hook reads what this set's
    /// hook made of the input.
    public func chained(with other: LinearInputHooks) -> LinearInputHooks {
        LinearInputHooks(byName.merging(other.byName) { ChainedHook(first: $0, second: $1) })
    }
}

/// Two hooks on one Linear, applied in turn.
struct ChainedHook: LinearInputHook {
    let first: any LinearInputHook
    let second: any LinearInputHook

    func callAsFunction(_ x: Tensor) -> Tensor { second(first(x)) }

    func slicingBatch(_ range: Range<Int>, of batch: Int) -> any LinearInputHook {
        ChainedHook(first: first.slicingBatch(range, of: batch), second: second.slicingBatch(range, of: batch))
    }
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
