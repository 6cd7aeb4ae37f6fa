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
/// 8-bit scale (0–255; `opencvGrey(_:)` makes them from engine frames) and returns
/// [height, width, 2]: per pixel of `prev` the displacement (dx, dy) in pixels to where
/// it is in `next`, i.e. prev(x, y) ≈ next(x + dx, y + dy). Passing `initialFlow` is
/// OPTFLOW_USE_INITIAL_FLOW: the search starts from it (shrunk with INTER_AREA to the
/// coarsest level) instead of from zero.
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

    public func flow(from prev: Tensor, to next: Tensor, initialFlow: Tensor? = nil) -> Tensor {
        precondition(prev.rank == 2 && prev.shape == next.shape,
                     "FarnebackFlow: two [height, width] images expected, got \(prev.shape) and \(next.shape)")
        let (h, w) = (prev.shape[0], prev.shape[1])
        if let initialFlow {
            precondition(initialFlow.shape == [h, w, 2], "FarnebackFlow: initial flow \(initialFlow.shape), expected \([h, w, 2])")
        }
        let levels = levelCount(width: w, height: h)
        var out = Tensor(uninitialized: [h, w, 2])
        // Every plane sized for full resolution; smaller levels use a prefix, so each
        // call asks the pool for the same blocks.
        var blurred = TensorBuffer(uninitializedCount: h * w)
        var rowScratch = TensorBuffer(uninitializedCount: h * w)
        var level = TensorBuffer(uninitializedCount: h * w)
        var expansions = TensorBuffer(uninitializedCount: 2 * h * w * 5)
        var matrices = TensorBuffer(uninitializedCount: h * w * 5)
        var coarser = TensorBuffer(uninitializedCount: h * w * 2)
        prev.data.withUnsafeBufferPointer { p in
        next.data.withUnsafeBufferPointer { q in
        out.data.withUnsafeMutableBufferPointer { o in
        blurred.withUnsafeMutableBufferPointer { b in
        rowScratch.withUnsafeMutableBufferPointer { rs in
        level.withUnsafeMutableBufferPointer { l in
        expansions.withUnsafeMutableBufferPointer { e in
        matrices.withUnsafeMutableBufferPointer { mb in
        coarser.withUnsafeMutableBufferPointer { c in
            let images = [p.baseAddress!, q.baseAddress!]
            let r = [e.baseAddress!, e.baseAddress! + h * w * 5]
            let m = mb.baseAddress!
            // Level k's flow is written where level k + 1's is not, level 0's into `out`.
            let flowPlanes = [o.baseAddress!, c.baseAddress!]
            var previous: (plane: UnsafeMutablePointer<Float>, width: Int, height: Int)? = nil
            for k in stride(from: levels, through: 0, by: -1) {
                let scale = Self.levelScale(k, parameters.pyramidScale)
                let lw = PlaneResampling.cvRound(Double(w) * scale)
                let lh = PlaneResampling.cvRound(Double(h) * scale)
                let flow = flowPlanes[k % 2]
                if let previous {
                    PlaneResampling.resizeLinear(previous.plane, width: previous.width, height: previous.height, channels: 2,
                                                 into: flow, width: lw, height: lh)
                    let up = Float(1 / parameters.pyramidScale)
                    for i in 0..<(lw * lh * 2) { flow[i] *= up }
                } else if let initialFlow {
                    initialFlow.data.withUnsafeBufferPointer { f in
                        PlaneResampling.resizeArea(f.baseAddress!, width: w, height: h, channels: 2, into: flow, width: lw, height: lh)
                    }
                    let down = Float(scale)
                    for i in 0..<(lw * lh * 2) { flow[i] *= down }
                } else {
                    flow.update(repeating: 0, count: lw * lh * 2)
                }
                let columns = PlaneSamples.readBy(linearFrom: w, to: lw)
                let rows = PlaneSamples.readBy(linearFrom: h, to: lh)
                for i in 0..<2 {
                    PlaneResampling.gaussianBlur(images[i], width: w, height: h, kernel: levelKernels[k],
                                                 into: b.baseAddress!, rowScratch: rs.baseAddress!, columns: columns, rows: rows)
                    PlaneResampling.resizeLinear(b.baseAddress!, width: w, height: h, channels: 1,
                                                 into: l.baseAddress!, width: lw, height: lh)
                    basis.expand(l.baseAddress!, width: lw, height: lh, into: r[i])
                }
                FarnebackSolver.updateMatrices(r0: r[0], r1: r[1], flow: flow, into: m, width: lw, height: lh)
                for iteration in 0..<parameters.iterations {
                    if parameters.gaussianWindow {
                        FarnebackSolver.solveGaussian(m, flow: flow, width: lw, height: lh, window: window)
                    } else {
                        FarnebackSolver.solveBox(m, flow: flow, width: lw, height: lh, blockSize: parameters.windowSize)
                    }
                    if iteration < parameters.iterations - 1 {
                        FarnebackSolver.updateMatrices(r0: r[0], r1: r[1], flow: flow, into: m, width: lw, height: lh)
                    }
                }
                previous = (flow, lw, lh)
            }
        }}}}}}}}}
        return out
    }
}
