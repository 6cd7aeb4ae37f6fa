/// A dense Float32 tensor in row-major order.
///
/// Image tensors inside the engine are NHWC (`[batch, height, width, channels]`) so that
/// a pixel's channels are contiguous: convolutions become GEMMs over rows of pixels and
/// per-channel affine ops vectorise. File and CLI boundaries are NCHW like diffusers;
/// `fromNCHW` / `toNCHW` convert there.
public struct Tensor: Sendable {
    public var shape: [Int]
    public var data: TensorBuffer

    public init(shape: [Int], data: TensorBuffer) {
        precondition(shape.reduce(1, *) == data.count, "Tensor: shape \(shape) does not match \(data.count) values")
        self.shape = shape
        self.data = data
    }

    public init(shape: [Int], data: [Float]) {
        self.init(shape: shape, data: TensorBuffer(data))
    }

    public init(zeros shape: [Int]) {
        self.shape = shape
        self.data = TensorBuffer(repeating: 0, count: shape.reduce(1, *))
    }

    /// Storage that the caller promises to overwrite completely.
    public init(uninitialized shape: [Int]) {
        self.shape = shape
        self.data = TensorBuffer(uninitializedCount: shape.reduce(1, *))
    }

    public var count: Int { data.count }
    public var rank: Int { shape.count }

    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(shape: newShape, data: data)
    }

    /// The items `indices` of the first dimension, in that order, as a new tensor
    /// (a pooled copy): a batch's slice, or one frame of it.
    public func batchItems(_ indices: some Collection<Int>) -> Tensor {
        let per = shape.dropFirst().reduce(1, *)
        var out = Tensor(uninitialized: [indices.count] + Array(shape.dropFirst()))
        out.data.withUnsafeMutableBufferPointer { o in
            data.withUnsafeBufferPointer { src in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < shape[0], "Tensor: item \(i) of a batch of \(shape[0])")
                    (o.baseAddress! + k * per).update(from: src.baseAddress! + i * per, count: per)
                }
            }
        }
        return out
    }

    /// Tensors of equal trailing shape stacked along the first dimension (a pooled copy).
    public static func concatenatingBatches(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty)
        let tail = Array(parts[0].shape.dropFirst())
        precondition(parts.allSatisfy { Array($0.shape.dropFirst()) == tail }, "Tensor: batches of different shapes")
        var out = Tensor(uninitialized: [parts.reduce(0) { $0 + $1.shape[0] }] + tail)
        out.data.withUnsafeMutableBufferPointer { o in
            var at = 0
            for part in parts {
                part.data.withUnsafeBufferPointer { o.baseAddress!.advanced(by: at).update(from: $0.baseAddress!, count: $0.count) }
                at += part.count
            }
        }
        return out
    }

    // NHWC accessors: most kernels need these four numbers.
    public var n: Int { shape[0] }
    public var h: Int { shape[1] }
    public var w: Int { shape[2] }
    public var c: Int { shape[3] }

    /// Converts an NCHW tensor (the layout of diffusers / safetensors files) to NHWC.
    public static func fromNCHW(_ t: Tensor) -> Tensor {
        precondition(t.rank == 4)
        let (n, c, h, w) = (t.shape[0], t.shape[1], t.shape[2], t.shape[3])
        var out = Tensor(uninitialized: [n, h, w, c])
        t.data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    for ch in 0..<c {
                        let s = (b * c + ch) * h * w
                        for p in 0..<(h * w) { dst[(b * h * w + p) * c + ch] = src[s + p] }
                    }
                }
            }
        }
        return out
    }

    /// Converts this NHWC tensor to NCHW.
    public func toNCHW() -> Tensor {
        precondition(rank == 4)
        let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3])
        var out = Tensor(uninitialized: [n, c, h, w])
        data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<n {
                    for ch in 0..<c {
                        let d = (b * c + ch) * h * w
                        for p in 0..<(h * w) { dst[d + p] = src[(b * h * w + p) * c + ch] }
                    }
                }
            }
        }
        return out
    }

    /// Concatenates NHWC tensors along channels (the U-Net's skip connections).
    public static func concatChannels(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.n == b.n && a.h == b.h && a.w == b.w, "concatChannels: \(a.shape) vs \(b.shape)")
        let pixels = a.n * a.h * a.w
        let (ca, cb) = (a.c, b.c)
        var out = Tensor(uninitialized: [a.n, a.h, a.w, ca + cb])
        a.data.withUnsafeBufferPointer { pa in
            b.data.withUnsafeBufferPointer { pb in
                out.data.withUnsafeMutableBufferPointer { po in
                    for p in 0..<pixels {
                        let o = po.baseAddress! + p * (ca + cb)
                        o.update(from: pa.baseAddress! + p * ca, count: ca)
                        (o + ca).update(from: pb.baseAddress! + p * cb, count: cb)
                    }
                }
            }
        }
        return out
    }

    /// Largest absolute difference to another tensor of the same size.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(count == other.count)
        var m: Float = 0
        for i in 0..<count { m = max(m, abs(data[i] - other.data[i])) }
        return m
    }

    public var maxAbs: Float { data.reduce(0) { max($0, abs($1)) } }
}
