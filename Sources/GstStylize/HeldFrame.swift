import Foundation
import StylizeCore
import StylizeEngine

/// One batch's input pixels: a pooled tensor [batch-size, H, W, 3] in [-1, 1] whose slots
/// the chain function converts frames into, so a full batch goes to the engine as it is.
final class BatchSlab {
    var tensor: Tensor
    let width: Int
    let height: Int
    var capacity: Int { tensor.n }
    private var perFrame: Int { width * height * 3 }

    init(capacity: Int, width: Int, height: Int) {
        tensor = Tensor(uninitialized: [capacity, height, width, 3])
        self.width = width
        self.height = height
    }

    func fits(_ format: VideoFormat, slot: Int) -> Bool {
        format.width == width && format.height == height && slot < capacity
    }

    /// Converts a mapped frame into slot `slot`.
    func convert(_ planes: FramePlanes, colorimetry: YUVColorimetry, into slot: Int) {
        let per = perFrame
        tensor.data.withUnsafeMutableBufferPointer { dst in
            ColorConversion.toRGB(planes, colorimetry: colorimetry, into: dst.baseAddress! + slot * per,
                                  rowStride: width * 3)
        }
    }

    /// The engine's input for `frames`: this slab itself when they fill it in order (every
    /// full batch), otherwise their slots gathered into a pooled tensor (a partial batch
    /// released early by an event or max-batch-wait).
    static func input(for frames: [HeldFrame]) -> Tensor {
        let first = frames[0].slab
        if first.capacity == frames.count,
           frames.indices.allSatisfy({ frames[$0].slab === first && frames[$0].slot == $0 }) {
            return first.tensor
        }
        let per = first.perFrame
        var out = Tensor(uninitialized: [frames.count, first.height, first.width, 3])
        out.data.withUnsafeMutableBufferPointer { dst in
            for (i, f) in frames.enumerated() {
                f.slab.tensor.data.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + i * per).update(from: src.baseAddress! + f.slot * per, count: per)
                }
            }
        }
        return out
    }
}

/// One frame between the chain function and the worker: the input buffer (kept so the
/// output is written back into it, which preserves PTS, DTS, duration, flags and metas),
/// its format, where its pixels are, and when it entered the element.
final class HeldFrame {
    let buffer: BufferRef
    let format: VideoFormat
    let slab: BatchSlab
    let slot: Int
    let entered: Double

    init(buffer: BufferRef, format: VideoFormat, slab: BatchSlab, slot: Int, entered: Double) {
        self.buffer = buffer
        self.format = format
        self.slab = slab
        self.slot = slot
        self.entered = entered
    }

    func sameGeometry(_ other: HeldFrame) -> Bool {
        format.width == other.format.width && format.height == other.format.height
    }
}
