import Foundation
import StylizeCore

/// An 8-bit RGB image, rows top to bottom, pixels interleaved R, G, B.
public struct RGBImage: Sendable {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// transformers' `Qwen2VLImageProcessor` (used by Qwen2-VL, Qwen2.5-VL and Qwen3-VL):
/// smart_resize to a multiple of patch·merge within a pixel budget, bicubic antialiased
/// resampling, rescale + normalise, and patchify into `pixel_values` rows in spatial-merge
/// block order with each frame repeated temporal_patch_size times.
public struct Qwen2VLImageProcessor: Sendable {
    public var patchSize = 14
    public var temporalPatchSize = 2
    public var mergeSize = 2
    public var minPixels = 56 * 56
    public var maxPixels = 28 * 28 * 1280
    public var imageMean: [Float] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Float] = [0.26862954, 0.26130258, 0.27577711]
    public var rescaleFactor: Float = 1 / 255
    public var doResize = true
    public var doRescale = true
    public var doNormalize = true

    public init() {}

    /// Reads `preprocessor_config.json`.
    public init(file: String) throws {
        let r = try ConfigReader(file: file)
        patchSize = try r.int("patch_size", patchSize)
        temporalPatchSize = try r.int("temporal_patch_size", temporalPatchSize)
        mergeSize = try r.int("merge_size", mergeSize)
        if case .object(let size)? = r.raw("size") {
            let s = ConfigReader(object: size, file: file + " (size)")
            minPixels = try s.int("shortest_edge", minPixels)
            maxPixels = try s.int("longest_edge", maxPixels)
        }
        minPixels = try r.int("min_pixels", minPixels)
        maxPixels = try r.int("max_pixels", maxPixels)
        imageMean = try r.floats("image_mean", imageMean)
        imageStd = try r.floats("image_std", imageStd)
        rescaleFactor = try r.float("rescale_factor", rescaleFactor)
        doResize = try r.bool("do_resize", true)
        doRescale = try r.bool("do_rescale", true)
        doNormalize = try r.bool("do_normalize", true)
        let resample = try r.int("resample", 3)
        if resample != 3 { throw r.unsupported("resample", resample) }  // 3 = PIL BICUBIC
        guard imageMean.count == 3, imageStd.count == 3 else {
            throw ModelError.invalidConfig(file: file, key: "image_mean", reason: "image_mean and image_std need 3 values")
        }
    }

    /// transformers' `smart_resize`: both sides multiples of factor = patch·merge, area within
    /// [minPixels, maxPixels], aspect ratio kept as closely as possible. Python's round()
    /// (half to even) is used for the first guess, as there.
    public func smartResize(height: Int, width: Int) throws -> (Int, Int) {
        let factor = patchSize * mergeSize
        guard height > 0, width > 0, Double(max(height, width)) / Double(min(height, width)) <= 200 else {
            throw ModelError.invalidInput(name: "image", reason: "\(width)×\(height): aspect ratio must be below 200")
        }
        var hBar = Int((Double(height) / Double(factor)).rounded(.toNearestOrEven)) * factor
        var wBar = Int((Double(width) / Double(factor)).rounded(.toNearestOrEven)) * factor
        if hBar * wBar > maxPixels {
            let beta = (Double(height * width) / Double(maxPixels)).squareRoot()
            hBar = max(factor, Int((Double(height) / beta / Double(factor)).rounded(.down)) * factor)
            wBar = max(factor, Int((Double(width) / beta / Double(factor)).rounded(.down)) * factor)
        } else if hBar * wBar < minPixels {
            let beta = (Double(minPixels) / Double(height * width)).squareRoot()
            hBar = Int((Double(height) * beta / Double(factor)).rounded(.up)) * factor
            wBar = Int((Double(width) * beta / Double(factor)).rounded(.up)) * factor
        }
        return (hBar, wBar)
    }

    public func callAsFunction(_ images: [RGBImage]) throws -> VisionInput {
        var rows: [Float] = []
        var grids: [GridTHW] = []
        for image in images {
            var (h, w) = (image.height, image.width)
            var pixels = image.pixels
            if doResize {
                (h, w) = try smartResize(height: image.height, width: image.width)
                pixels = resizeBicubicAntialiased(image, width: w, height: h)
            } else if h % (patchSize * mergeSize) != 0 || w % (patchSize * mergeSize) != 0 {
                throw ModelError.invalidInput(name: "image", reason: "\(w)×\(h) is not a multiple of \(patchSize * mergeSize) and do_resize is off")
            }
            // Rescale and normalise in float32 in the same order as transformers.
            var planar = [Float](repeating: 0, count: 3 * h * w)  // [C, H, W]
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                var v = Float(pixels[(y * w + x) * 3 + c])
                if doRescale { v *= rescaleFactor }
                if doNormalize { v = (v - imageMean[c]) / imageStd[c] }
                planar[(c * h + y) * w + x] = v
            } } }
            let (gh, gw) = (h / patchSize, w / patchSize)
            let (p, m, tp) = (patchSize, mergeSize, temporalPatchSize)
            let rowLength = 3 * tp * p * p
            var patch = [Float](repeating: 0, count: rowLength)
            for bh in 0..<(gh / m) { for bw in 0..<(gw / m) { for mh in 0..<m { for mw in 0..<m {
                let py0 = (bh * m + mh) * p, px0 = (bw * m + mw) * p
                for c in 0..<3 { for t in 0..<tp { for py in 0..<p { for px in 0..<p {
                    patch[((c * tp + t) * p + py) * p + px] = planar[(c * h + py0 + py) * w + px0 + px]
                } } } }
                rows.append(contentsOf: patch)
            } } } }
            grids.append(GridTHW(t: 1, h: gh, w: gw))
        }
        let total = grids.reduce(0) { $0 + $1.patches }
        return VisionInput(pixelValues: Tensor(shape: [total, 3 * temporalPatchSize * patchSize * patchSize], data: rows),
                           grids: grids)
    }
}

/// Bicubic (a = −0.5) resampling with antialiasing when shrinking, as PIL and torchvision's
/// uint8 path do it: separable, horizontal pass first, each pass rounded back to 8 bits.
/// Coefficients are computed in floating point; the references use 22-bit fixed point,
/// which can differ by one level on rare pixels.
public func resizeBicubicAntialiased(_ image: RGBImage, width ow: Int, height oh: Int) -> [UInt8] {
    func filter(_ x: Double) -> Double {
        let a = -0.5, t = abs(x)
        if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
        if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
        return 0
    }
    /// For each output index: first input index and normalised weights.
    func coefficients(input: Int, output: Int) -> [(Int, [Double])] {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)
        let support = 2 * filterScale
        return (0..<output).map { o in
            let center = (Double(o) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), input)
            var weights = (lo..<hi).map { filter((Double($0) - center + 0.5) / filterScale) }
            let total = weights.reduce(0, +)
            if total != 0 { weights = weights.map { $0 / total } }
            return (lo, weights)
        }
    }
    func clip8(_ v: Double) -> UInt8 { UInt8(max(0, min(255, v.rounded(.toNearestOrAwayFromZero)))) }

    let (iw, ih) = (image.width, image.height)
    var horizontal = image.pixels
    var hw = iw
    if ow != iw {
        let coeffs = coefficients(input: iw, output: ow)
        horizontal = [UInt8](repeating: 0, count: ih * ow * 3)
        for y in 0..<ih { for (x, (lo, weights)) in coeffs.enumerated() { for c in 0..<3 {
            var acc = 0.0
            for (k, wgt) in weights.enumerated() { acc += Double(image.pixels[(y * iw + lo + k) * 3 + c]) * wgt }
            horizontal[(y * ow + x) * 3 + c] = clip8(acc)
        } } }
        hw = ow
    }
    guard oh != ih else { return horizontal }
    let coeffs = coefficients(input: ih, output: oh)
    var out = [UInt8](repeating: 0, count: oh * hw * 3)
    for (y, (lo, weights)) in coeffs.enumerated() { for x in 0..<hw { for c in 0..<3 {
        var acc = 0.0
        for (k, wgt) in weights.enumerated() { acc += Double(horizontal[((lo + k) * hw + x) * 3 + c]) * wgt }
        out[(y * hw + x) * 3 + c] = clip8(acc)
    } } }
    return out
}
