/// The parameters of cv2.calcOpticalFlowFarneback, same names and meanings. The defaults
/// are those of the video style-transfer literature (Ruder et al. and its successors):
/// pyr_scale 0.5, levels 3, winsize 15, iterations 3, poly_n 5, poly_sigma 1.2, flags 0.
public struct FarnebackParameters: Sendable, Equatable {
    /// pyr_scale: each pyramid level is this fraction of the one below (< 1).
    public var pyramidScale: Double = 0.5
    /// levels: pyramid levels above the full-resolution one (fewer when a level would
    /// fall under 32 pixels in either direction, as OpenCV does).
    public var levels: Int = 3
    /// winsize: side of the averaging window.
    public var windowSize: Int = 15
    /// iterations per level.
    public var iterations: Int = 3
    /// poly_n: radius of the polynomial expansion's neighbourhood (OpenCV documents 5 or 7).
    public var polyN: Int = 5
    /// poly_sigma: σ of its Gaussian applicability (1.1 for poly_n 5, 1.5 for 7 in OpenCV's docs).
    public var polySigma: Double = 1.2
    /// OPTFLOW_FARNEBACK_GAUSSIAN: a Gaussian window instead of a box.
    public var gaussianWindow: Bool = false

    public init() {}

    public init(pyramidScale: Double = 0.5, levels: Int = 3, windowSize: Int = 15, iterations: Int = 3,
                polyN: Int = 5, polySigma: Double = 1.2, gaussianWindow: Bool = false) {
        self.pyramidScale = pyramidScale
        self.levels = levels
        self.windowSize = windowSize
        self.iterations = iterations
        self.polyN = polyN
        self.polySigma = polySigma
        self.gaussianWindow = gaussianWindow
    }
}

/// Dense optical flow by Farnebäck's polynomial expansion, computed as OpenCV 4.6's
/// calcOpticalFlowFarneback computes it on the CPU (same pyramid, same float/double
/// arithmetic and order), so vectors match cv2's to rounding.
///
/// `flow(from: prev, to: next)` takes two one-channel images [height, width] on OpenCV's
/// 8-bit scale (0–255; `FlowWarp.grey(_:)` makes them from engine frames) and returns
/// [height, width, 2]: per pixel of `prev` the displacement (dx, dy) in pixels to where
/// it is in `next`, i.e. prev(x, y) ≈ next(x + dx, y + dy). Passing `initialFlow` is
/// OPTFLOW_USE_INITIAL_FLOW: the search starts from it (shrunk with INTER_AREA to the
/// coarsest level) instead of from zero.
///
/// Half the work is each image's pyramid of polynomial expansions, which depends on the
/// image alone: `expansion(of:)` computes it once, for a video frame that is the `next`
/// of one flow and the `prev` of the following one, or both frames of a forward and a
/// backward flow; `flow(from:to:)` on two expansions does the rest.
///
/// All scratch comes from the tensor pool: a call at a size seen before allocates no
/// tensor memory. Rows are split over `ThreadBudget` threads.
public struct FarnebackFlow: Sendable {
    public let parameters: FarnebackParameters
    let basis: PolynomialBasis
    let window: [Float]
    /// Each pyramid level's blur kernel, by level (index 0: full resolution).
    let levelKernels: [[Float]]
    static let minimumLevelSize = 32

    public init(_ parameters: FarnebackParameters = FarnebackParameters()) {
        precondition(parameters.pyramidScale > 0 && parameters.pyramidScale < 1,
                     "FarnebackFlow: pyramidScale must be in (0, 1), got \(parameters.pyramidScale)")
        precondition(parameters.levels >= 0 && parameters.iterations >= 0, "FarnebackFlow: negative levels or iterations")
        precondition(parameters.windowSize >= 1, "FarnebackFlow: windowSize must be at least 1")
        precondition(parameters.polyN >= 1, "FarnebackFlow: polyN must be at least 1")
        self.parameters = parameters
        basis = PolynomialBasis(radius: parameters.polyN, sigma: parameters.polySigma)
        window = FarnebackSolver.gaussianWindow(blockSize: parameters.windowSize)
        levelKernels = (0...parameters.levels).map { k in
            let (sigma, size) = FarnebackFlow.levelBlur(scale: FarnebackFlow.levelScale(k, parameters.pyramidScale))
            return PlaneResampling.gaussianKernel(size: size, sigma: sigma)
        }
    }

    /// pyr_scaleᵏ by repeated multiplication, as OpenCV forms it.
    static func levelScale(_ k: Int, _ pyramidScale: Double) -> Double {
        var scale = 1.0
        for _ in 0..<k { scale *= pyramidScale }
        return scale
    }

    /// The anti-aliasing blur before shrinking to `scale`: σ = (1/scale − 1)/2, kernel size
    /// round(5σ) made odd, at least 3 (at full resolution σ = 0 gives the [1 2 1]/4 kernel).
    static func levelBlur(scale: Double) -> (sigma: Double, size: Int) {
        let sigma = (1 / scale - 1) * 0.5
        return (sigma, max(PlaneResampling.cvRound(sigma * 5) | 1, 3))
    }

    /// Levels actually used for a width × height image.
    func levelCount(width w: Int, height h: Int) -> Int {
        var scale = 1.0
        var k = 0
        while k < parameters.levels {
            scale *= parameters.pyramidScale
            if Double(w) * scale < Double(Self.minimumLevelSize) || Double(h) * scale < Double(Self.minimumLevelSize) { break }
            k += 1
        }
        return k
    }

    /// Level k's size: the full size times pyr_scaleᵏ, rounded as cvRound does.
    func levelSize(_ k: Int, width w: Int, height h: Int) -> (width: Int, height: Int) {
        let scale = Self.levelScale(k, parameters.pyramidScale)
        return (PlaneResampling.cvRound(Double(w) * scale), PlaneResampling.cvRound(Double(h) * scale))
    }

    /// One image's polynomial expansions at every pyramid level, for `flow(from:to:)`.
    /// Only valid with the `FarnebackFlow` (the same pyramid and expansion parameters)
    /// that made it.
    public struct Expansion: Sendable {
        let storage: TensorBuffer
        public let width: Int
        public let height: Int
        let parameters: FarnebackParameters

        /// Floats of level k: R as five planes, then interleaved with 8 floats of padding.
        static func levelFloats(width w: Int, height h: Int) -> Int { 10 * w * h + 8 }
    }

    /// Where level k's expansion starts in an Expansion's storage.
    private func levelOffset(_ k: Int, width w: Int, height h: Int) -> Int {
        var offset = 0
        for j in 0..<k {
            let (lw, lh) = levelSize(j, width: w, height: h)
            offset += Expansion.levelFloats(width: lw, height: lh)
        }
        return offset
    }

    /// The polynomial expansion of `image` ([height, width], 0–255) at every pyramid
    /// level: OpenCV blurs the full image for each level (σ growing with the level) and
    /// resizes it down, then expands.
    public func expansion(of image: Tensor) -> Expansion {
        precondition(image.rank == 2, "FarnebackFlow: a [height, width] image expected, got \(image.shape)")
        let (h, w) = (image.shape[0], image.shape[1])
        let levels = levelCount(width: w, height: h)
        var storage = TensorBuffer(uninitializedCount: levelOffset(levels + 1, width: w, height: h))
        var blurred = TensorBuffer(uninitializedCount: h * w)
        var rowScratch = TensorBuffer(uninitializedCount: h * w)
        var level = TensorBuffer(uninitializedCount: h * w)
        image.data.withUnsafeBufferPointer { src in
        storage.withUnsafeMutableBufferPointer { out in
        blurred.withUnsafeMutableBufferPointer { b in
        rowScratch.withUnsafeMutableBufferPointer { rs in
        level.withUnsafeMutableBufferPointer { l in
            for k in 0...levels {
                let (lw, lh) = levelSize(k, width: w, height: h)
                let rows = PlaneSamples.readBy(linearFrom: h, to: lh)
                if lw == w && lh == h {
                    // A same-size resize is a copy: blur straight into the level.
                    PlaneResampling.gaussianBlur(src.baseAddress!, width: w, height: h, kernel: levelKernels[k],
                                                 into: l.baseAddress!, rowScratch: rs.baseAddress!, rows: rows)
                } else {
                    PlaneResampling.gaussianBlur(src.baseAddress!, width: w, height: h, kernel: levelKernels[k],
                                                 into: b.baseAddress!, rowScratch: rs.baseAddress!, rows: rows)
                    PlaneResampling.resizeLinear(b.baseAddress!, width: w, height: h, channels: 1,
                                                 into: l.baseAddress!, width: lw, height: lh)
                }
                let base = out.baseAddress! + levelOffset(k, width: w, height: h)
                basis.expand(l.baseAddress!, width: lw, height: lh, planes: base, planeStride: lw * lh, pixels: base + 5 * lw * lh)
            }
        }}}}}
        return Expansion(storage: storage, width: w, height: h, parameters: parameters)
    }

    public func flow(from prev: Tensor, to next: Tensor, initialFlow: Tensor? = nil) -> Tensor {
        precondition(prev.rank == 2 && prev.shape == next.shape,
                     "FarnebackFlow: two [height, width] images expected, got \(prev.shape) and \(next.shape)")
        return flow(from: expansion(of: prev), to: expansion(of: next), initialFlow: initialFlow)
    }

    public func flow(from prev: Expansion, to next: Expansion, initialFlow: Tensor? = nil) -> Tensor {
        precondition(prev.width == next.width && prev.height == next.height,
                     "FarnebackFlow: expansions of \(prev.width)x\(prev.height) and \(next.width)x\(next.height)")
        precondition(prev.parameters == parameters && next.parameters == parameters,
                     "FarnebackFlow: an expansion made with other parameters")
        let (h, w) = (prev.height, prev.width)
        if let initialFlow {
            precondition(initialFlow.shape == [h, w, 2], "FarnebackFlow: initial flow \(initialFlow.shape), expected \([h, w, 2])")
        }
        let levels = levelCount(width: w, height: h)
        var out = Tensor(uninitialized: [h, w, 2])
        // Planes sized for full resolution; smaller levels use a prefix, so each call
        // asks the pool for the same blocks.
        var matrices = TensorBuffer(uninitializedCount: h * w * 5)
        var coarser = TensorBuffer(uninitializedCount: h * w * 2)
        prev.storage.withUnsafeBufferPointer { e0 in
        next.storage.withUnsafeBufferPointer { e1 in
        out.data.withUnsafeMutableBufferPointer { o in
        matrices.withUnsafeMutableBufferPointer { mb in
        coarser.withUnsafeMutableBufferPointer { c in
            let m = mb.baseAddress!
            var previous: (plane: UnsafeMutablePointer<Float>, width: Int, height: Int)? = nil
            for k in stride(from: levels, through: 0, by: -1) {
                let (lw, lh) = levelSize(k, width: w, height: h)
                // Level k's flow is written where level k + 1's is not, level 0's into `out`.
                let flow = k % 2 == 0 ? o.baseAddress! : c.baseAddress!
                if let previous {
                    PlaneResampling.resizeLinear(previous.plane, width: previous.width, height: previous.height, channels: 2,
                                                 into: flow, width: lw, height: lh)
                    let up = Float(1 / parameters.pyramidScale)
                    for i in 0..<(lw * lh * 2) { flow[i] *= up }
                } else if let initialFlow {
                    initialFlow.data.withUnsafeBufferPointer { f in
                        PlaneResampling.resizeArea(f.baseAddress!, width: w, height: h, channels: 2, into: flow, width: lw, height: lh)
                    }
                    let down = Float(Self.levelScale(k, parameters.pyramidScale))
                    for i in 0..<(lw * lh * 2) { flow[i] *= down }
                } else {
                    flow.update(repeating: 0, count: lw * lh * 2)
                }
                let offset = levelOffset(k, width: w, height: h)
                let own = e0.baseAddress! + offset
                let moved = e1.baseAddress! + offset + 5 * lw * lh
                let planeStride = lw * lh
                FarnebackSolver.updateMatrices(own: own, ownStride: planeStride, moved: moved, flow: flow,
                                               into: m, stride: planeStride, width: lw, height: lh)
                for iteration in 0..<parameters.iterations {
                    if parameters.gaussianWindow {
                        FarnebackSolver.solveGaussian(m, stride: planeStride, flow: flow, width: lw, height: lh, window: window)
                    } else {
                        FarnebackSolver.solveBox(m, stride: planeStride, flow: flow, width: lw, height: lh,
                                                 blockSize: parameters.windowSize)
                    }
                    if iteration < parameters.iterations - 1 {
                        FarnebackSolver.updateMatrices(own: own, ownStride: planeStride, moved: moved, flow: flow,
                                                       into: m, stride: planeStride, width: lw, height: lh)
                    }
                }
                previous = (flow, lw, lh)
            }
        }}}}}
        return out
    }

    /// The flow computed on both images shrunk by `factor` (block means, as INTER_AREA
    /// gives them) and brought back to full size: the field resized linearly and its
    /// vectors scaled by the size ratio. About factor² less work, at the cost of detail
    /// (OpticalFlowTests prints the error against full-resolution OpenCV flow).
    public func flow(from prev: Tensor, to next: Tensor, downscale factor: Int) -> Tensor {
        precondition(factor >= 1 && prev.rank == 2 && prev.shape == next.shape, "FarnebackFlow: bad reduced-resolution call")
        if factor == 1 { return flow(from: prev, to: next) }
        let coarse = flow(from: Self.shrink(prev, by: factor), to: Self.shrink(next, by: factor))
        return Self.enlarge(coarse, height: prev.shape[0], width: prev.shape[1])
    }

    /// A [height, width] image shrunk to [height / factor, width / factor] by INTER_AREA.
    public static func shrink(_ image: Tensor, by factor: Int) -> Tensor {
        let (h, w) = (image.shape[0], image.shape[1])
        let (sh, sw) = (h / factor, w / factor)
        var small = Tensor(uninitialized: [sh, sw])
        image.data.withUnsafeBufferPointer { s in
            small.data.withUnsafeMutableBufferPointer { d in
                PlaneResampling.resizeArea(s.baseAddress!, width: w, height: h, channels: 1, into: d.baseAddress!, width: sw, height: sh)
            }
        }
        return small
    }

    /// A flow field [sh, sw, 2] computed on shrunk images, as a field of the full
    /// [height, width] grid: resized linearly, vectors scaled by the size ratio.
    public static func enlarge(_ coarse: Tensor, height h: Int, width w: Int) -> Tensor {
        let (sh, sw) = (coarse.shape[0], coarse.shape[1])
        var out = Tensor(uninitialized: [h, w, 2])
        coarse.data.withUnsafeBufferPointer { s in
            out.data.withUnsafeMutableBufferPointer { d in
                PlaneResampling.resizeLinear(s.baseAddress!, width: sw, height: sh, channels: 2, into: d.baseAddress!, width: w, height: h)
                let (fx, fy) = (Float(w) / Float(sw), Float(h) / Float(sh))
                for p in 0..<(h * w) {
                    d[2 * p] *= fx
                    d[2 * p + 1] *= fy
                }
            }
        }
        return out
    }
}
