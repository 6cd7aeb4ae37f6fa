import StylizeCore

/// diffusers `ResnetBlock2D` (time_embedding_norm "default"):
/// norm1 → act → conv1 → + time_emb_proj(act(temb)) → norm2 → act → conv2, plus the
/// (1×1 conv_shortcut) residual, divided by output_scale_factor.
public struct ResnetBlock2D: Sendable {
    let norm1: GroupNorm
    let conv1: Conv2d
    let timeEmbProj: Linear?
    let norm2: GroupNorm
    let conv2: Conv2d
    let convShortcut: Conv2d?
    let act: Activation
    let outputScaleFactor: Float

    public init(_ w: Weights, inChannels: Int, outChannels: Int, tembChannels: Int?, groups: Int,
                eps: Float, act: Activation, outputScaleFactor: Float = 1) throws {
        norm1 = try GroupNorm(w["norm1"], groups: groups, channels: inChannels, eps: eps)
        conv1 = try Conv2d(w["conv1"], inChannels: inChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        timeEmbProj = try tembChannels.map { try Linear(w["time_emb_proj"], inFeatures: $0, outFeatures: outChannels) }
        norm2 = try GroupNorm(w["norm2"], groups: groups, channels: outChannels, eps: eps)
        conv2 = try Conv2d(w["conv2"], inChannels: outChannels, outChannels: outChannels, kernelSize: 3, padding: 1)
        convShortcut = inChannels != outChannels
            ? try Conv2d(w["conv_shortcut"], inChannels: inChannels, outChannels: outChannels, kernelSize: 1)
            : nil
        self.act = act
        self.outputScaleFactor = outputScaleFactor
    }

    /// - Parameter tembActivated: act(temb), shared by every block of the U-Net.
    public func callAsFunction(_ x: Tensor, tembActivated: Tensor?) -> Tensor {
        var h = conv1(norm1(x, activation: act))
        if let timeEmbProj, let tembActivated {
            addBatchChannelBias(&h, timeEmbProj(tembActivated))
        }
        h = conv2(norm2(h, activation: act))
        let shortcut = convShortcut.map { $0(x) } ?? x
        addInPlace(&h, shortcut)
        if outputScaleFactor != 1 { affineInPlace(&h, scale: 1 / outputScaleFactor, shift: 0) }
        return h
    }
}

/// diffusers `Downsample2D` with a conv: stride-2 3×3; padding 0 means pad (0,1,0,1) first.
public struct Downsample2D: Sendable {
    let conv: Conv2d
    let padding: Int

    public init(_ w: Weights, channels: Int, outChannels: Int? = nil, padding: Int) throws {
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: outChannels ?? channels,
                          kernelSize: 3, stride: 2, padding: padding)
        self.padding = padding
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        padding == 0 ? conv(padBottomRight(x, bottom: 1, right: 1)) : conv(x)
    }
}

/// diffusers `Upsample2D` with a conv: nearest ×2 (or to an explicit size) then 3×3.
public struct Upsample2D: Sendable {
    let conv: Conv2d

    public init(_ w: Weights, channels: Int, outChannels: Int? = nil) throws {
        conv = try Conv2d(w["conv"], inChannels: channels, outChannels: outChannels ?? channels,
                          kernelSize: 3, padding: 1)
    }

    public func callAsFunction(_ x: Tensor, size: (Int, Int)? = nil) -> Tensor {
        let (oh, ow) = size ?? (x.h * 2, x.w * 2)
        return conv(upsampleNearest(x, height: oh, width: ow))
    }
}
