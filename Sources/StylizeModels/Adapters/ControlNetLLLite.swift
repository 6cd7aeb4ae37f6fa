import Foundation
import StylizeCore

/// Which of the denoiser's blocks carry LLLite hooks (the paper hooks the down blocks).
public enum LLLiteBlocks: String, Sendable, CaseIterable {
    case down, downMid = "down+mid", all

    func includes(_ block: DenoiserBlock) -> Bool {
        switch (self, block) {
        case (_, .down), (.downMid, .mid), (.all, _): return true
        default: return false
        }
    }
}

/// One ControlNet-LLLite module (kohya-ss sd-scripts `LLLiteModule`, Linear case): a
/// conditioning network from the control image to tokens, and a LoRA-like MLP whose
/// output is added to the hooked Linear's input:
/// `Linear(x + m · up(relu(mid(cat[cx, relu(down(x))]))))`.
public struct LLLiteModule: Sendable {
    /// The module's name as stored in the file.
    public let name: String
    public let target: HookableLinear
    /// 1, 2 or 3: the control image is downscaled by 8, 16 or 32.
    public let depth: Int
    public let condEmbDim: Int
    public let mlpDim: Int
    /// `conditioning1`: convolutions with ReLU between.
    let conditioning: [Conv2dKernel]
    /// Each conv's identity among the adapter's (`ConditioningTrunks`): modules trained
    /// with a shared trunk store equal copies, and the conditioning runs each once.
    var conditioningIDs: [Int] = []
    /// Leading conditioning layers another module shares (computed once per call).
    var sharedLayers = 0
    let down: LinearKernel
    /// `mid` split by its input columns: the cx part (with mid's bias) depends only on the
    /// control image, so it is computed once per conditioning, not once per step.
    let midFromCondition: LinearKernel
    let midFromInput: LinearKernel
    let up: LinearKernel

    /// Control-image pixels per token.
    public var imageDownscale: Int { 4 << depth }

    /// [B, H, W, 3] control image(s) in [-1, 1] → mid's conditioning term [B, h·w, mlp_dim],
    /// taking from `trunks` what another module with the same leading convs computed.
    func condition(_ image: Tensor, trunks: inout ConditioningTrunks) -> Tensor {
        var x = image
        for (i, conv) in conditioning.enumerated() {
            let chain = Array(conditioningIDs[...i])
            if i < sharedLayers, let done = trunks.outputs[chain] {
                x = done
                continue
            }
            if i > 0 {
                if i - 1 < sharedLayers {
                    x = trunks.activated(Array(conditioningIDs[..<i]))
                } else {
                    Activation.relu.apply(&x)
                }
            }
            x = conv(x)
            if i < sharedLayers { trunks.outputs[chain] = x }
        }
        return midFromCondition(x.reshaped([x.n, x.h * x.w, x.c]))
    }
}

/// One `condition` call's outputs of the conditioning layers that several modules share
/// (by the chain of conv identities from the image up to that layer), and their ReLUs:
/// a shared trunk runs once and is activated once. Layers of one module alone are not
/// kept, so per-module adapters (sd-scripts trains them so) hold no more than before.
struct ConditioningTrunks {
    var outputs: [[Int]: Tensor] = [:]
    private var activations: [[Int]: Tensor] = [:]

    /// The ReLU of a kept output.
    mutating func activated(_ chain: [Int]) -> Tensor {
        if let done = activations[chain] { return done }
        var x = outputs[chain]!
        Activation.relu.apply(&x)
        activations[chain] = x
        return x
    }

    /// Gives equal convs (same shape, weights and bias) one identity, and each module the
    /// number of its leading layers that another module shares.
    static func identify(_ modules: inout [LLLiteModule]) {
        struct Weights: Hashable {
            let shape: [Int]
            let weight: [Float]
            let bias: [Float]?
        }
        var ids: [Weights: Int] = [:]
        for m in modules.indices {
            modules[m].conditioningIDs = modules[m].conditioning.map { c in
                let key = Weights(shape: [c.inChannels, c.outChannels, c.kernelH, c.kernelW, c.stride],
                                  weight: c.packedWeight, bias: c.bias)
                if let id = ids[key] { return id }
                ids[key] = ids.count
                return ids.count - 1
            }
        }
        var users: [[Int]: Int] = [:]
        for m in modules {
            for i in m.conditioningIDs.indices { users[Array(m.conditioningIDs[...i]), default: 0] += 1 }
        }
        for m in modules.indices {
            let ids = modules[m].conditioningIDs
            modules[m].sharedLayers = ids.indices.prefix { users[Array(ids[...$0])]! > 1 }.count
        }
    }
}

/// A loaded ControlNet-LLLite, validated against the denoiser it is attached to.
public final class ControlNetLLLite: Sendable {
    public let file: String
    public let modules: [LLLiteModule]
    /// Modules in the file on blocks not selected (`LLLiteBlocks`), left out.
    public let skipped: [String]

    /// - Parameters:
    ///   - imageDownscale: pixels per latent cell of the model's autoencoder.
    ///   - blocks: which blocks' modules are applied; the others are skipped.
    public init(file: String, denoiser: any Denoiser, imageDownscale: Int, blocks: LLLiteBlocks = .down) throws {
        self.file = file
        guard FileManager.default.fileExists(atPath: file) else {
            throw ModelError.fileNotFound(path: file, what: "ControlNet-LLLite weights")
        }
        let st = try SafeTensorsFile(path: file)
        var grouped: [String: [LLLiteKey: String]] = [:]
        for key in st.entries.keys {
            guard let k = LLLiteKey(key) else {
                throw ModelError.unexpectedTensors(file: file, tensors: [key])
            }
            grouped[k.module, default: [:]][k] = key
        }
        guard !grouped.isEmpty else {
            throw ModelError.invalidSafeTensors(file: file, reason: "holds no LLLite modules")
        }
        let hookable = Dictionary(denoiser.hookableLinears.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var modules: [LLLiteModule] = []
        var skipped: [String] = []
        for (module, keys) in grouped.sorted(by: { $0.key < $1.key }) {
            guard let linear = LLLiteTarget.linearName(module: module, layersPerBlock: denoiser.layersPerBlock),
                  let target = hookable[linear] else {
                throw ModelError.invalidConfig(
                    file: file, key: module,
                    reason: "names no attention projection of this U-Net that LLLite can hook (self-attention q/k/v or cross-attention q of a transformer block)")
            }
            guard blocks.includes(target.block) else {
                skipped.append(module)
                continue
            }
            let m = try Self.module(module, keys: keys, file: st, target: target)
            let grid = imageDownscale * target.latentDownscale
            guard m.imageDownscale == grid else {
                throw ModelError.invalidConfig(
                    file: file, key: module,
                    reason: "its conditioning (depth \(m.depth)) downscales the control image by \(m.imageDownscale), but \(target.block)'s tokens are the image downscaled by \(grid)")
            }
            modules.append(m)
        }
        guard !modules.isEmpty else {
            throw ModelError.invalidConfig(file: file, key: "blocks",
                                           reason: "none of its \(grouped.count) modules is on the selected blocks (\(blocks.rawValue))")
        }
        let dims = Set(modules.map { [$0.condEmbDim, $0.mlpDim] })
        guard dims.count == 1 else {
            throw ModelError.invalidConfig(file: file, key: modules[0].name,
                                           reason: "modules disagree on cond_emb_dim / mlp_dim: \(dims.sorted { $0.lexicographicallyPrecedes($1) })")
        }
        ConditioningTrunks.identify(&modules)
        self.modules = modules
        self.skipped = skipped
    }

    /// Conditioning convs that differ, of all the modules' (equal ones run once per call).
    public var distinctConditioningConvs: Int { Set(modules.flatMap(\.conditioningIDs)).count }

    public var condEmbDim: Int { modules[0].condEmbDim }
    public var mlpDim: Int { modules[0].mlpDim }

    /// Builds one module from its tensors, inferring the dimensions (cond_emb_dim from
    /// conditioning1.0, mlp_dim from down.0, depth from which conditioning layers exist)
    /// and checking every shape against them.
    private static func module(_ name: String, keys: [LLLiteKey: String], file st: SafeTensorsFile,
                               target: HookableLinear) throws -> LLLiteModule {
        let file = st.path
        func key(_ layer: String, _ index: Int, _ parameter: String) -> String? {
            keys.first { $0.key.layer == layer && $0.key.index == index && $0.key.parameter == parameter }?.value
        }
        func shape(_ layer: String, _ index: Int, _ parameter: String = "weight") throws -> [Int] {
            guard let k = key(layer, index, parameter), let e = st.entries[k] else {
                throw ModelError.missingTensor(file: file, tensor: "\(name).\(layer).\(index).\(parameter)")
            }
            return e.shape
        }
        func load(_ layer: String, _ index: Int, _ parameter: String, _ expected: [Int]) throws -> [Float] {
            let found = try shape(layer, index, parameter)
            let k = key(layer, index, parameter)!
            guard found == expected else {
                throw ModelError.shapeMismatch(file: file, tensor: k, expected: expected, found: found)
            }
            return try st.floats(k)
        }
        let c0 = try shape("conditioning1", 0)
        guard c0.count == 4, c0[1] == 3, c0[2] == 4, c0[3] == 4 else {
            throw ModelError.shapeMismatch(file: file, tensor: key("conditioning1", 0, "weight")!,
                                           expected: [-1, 3, 4, 4], found: c0)
        }
        let half = c0[0], cond = 2 * half
        let d0 = try shape("down", 0)
        guard d0.count == 2 else {
            throw ModelError.shapeMismatch(file: file, tensor: key("down", 0, "weight")!, expected: [-1, target.inFeatures], found: d0)
        }
        let mlp = d0[0], inDim = target.inFeatures
        let depth: Int
        if key("conditioning1", 4, "weight") != nil {
            depth = 3
        } else {
            let c2 = try shape("conditioning1", 2)
            guard c2.count == 4, c2[2] == c2[3], c2[2] == 2 || c2[2] == 4 else {
                throw ModelError.shapeMismatch(file: file, tensor: key("conditioning1", 2, "weight")!,
                                               expected: [cond, half, 2, 2], found: c2)
            }
            depth = c2[2] == 2 ? 1 : 2
        }
        func conv(_ index: Int, _ cin: Int, _ cout: Int, _ k: Int) throws -> Conv2dKernel {
            Conv2dKernel(torchWeight: try load("conditioning1", index, "weight", [cout, cin, k, k]),
                         bias: try load("conditioning1", index, "bias", [cout]), inChannels: cin, outChannels: cout,
                         kernelH: k, kernelW: k, stride: k, padding: (0, 0, 0, 0))
        }
        var convs = [try conv(0, 3, half, 4)]
        switch depth {
        case 1: convs.append(try conv(2, half, cond, 2))
        case 2: convs.append(try conv(2, half, cond, 4))
        default: convs += [try conv(2, half, half, 4), try conv(4, half, cond, 2)]
        }
        func linear(_ layer: String, _ inF: Int, _ outF: Int) throws -> LinearKernel {
            LinearKernel(weight: try load(layer, 0, "weight", [outF, inF]), bias: try load(layer, 0, "bias", [outF]),
                         inFeatures: inF, outFeatures: outF)
        }
        let mid = try linear("mid", mlp + cond, mlp)
        // cat([cx, down(x)]): mid's first cond columns read cx, the rest down(x).
        var fromCondition = [Float](), fromInput = [Float]()
        fromCondition.reserveCapacity(mlp * cond)
        fromInput.reserveCapacity(mlp * mlp)
        for o in 0..<mlp {
            let row = mid.weight[(o * (mlp + cond))..<((o + 1) * (mlp + cond))]
            fromCondition += row.prefix(cond)
            fromInput += row.suffix(mlp)
        }
        let used = Set((0..<convs.count).map { "conditioning1.\($0 * 2)" } + ["down.0", "mid.0", "up.0"])
        let unused = keys.filter { !used.contains("\($0.key.layer).\($0.key.index)") }.map(\.value).sorted()
        guard unused.isEmpty else { throw ModelError.unexpectedTensors(file: file, tensors: unused) }
        return LLLiteModule(
            name: name, target: target, depth: depth, condEmbDim: cond, mlpDim: mlp, conditioning: convs,
            down: try linear("down", inDim, mlp),
            midFromCondition: LinearKernel(weight: fromCondition, bias: mid.bias, inFeatures: cond, outFeatures: mlp),
            midFromInput: LinearKernel(weight: fromInput, bias: nil, inFeatures: mlp, outFeatures: mlp),
            up: try linear("up", mlp, inDim))
    }

    /// Runs every module's conditioning network on the control image(s) — one per frame
    /// of the batch, or one shared by all — and checks each module's tokens against the
    /// denoiser's grid for a latent of `latentHeight` × `latentWidth`.
    /// - Parameter images: NHWC [B or 1, H, W, 3] in [-1, 1].
    public func condition(images: Tensor, latentHeight: Int, latentWidth: Int) throws -> LLLiteConditioning {
        guard images.rank == 4, images.c == 3 else {
            throw ModelError.invalidInput(name: "control_image", reason: "has shape \(images.shape) (NHWC), expected 3 channels")
        }
        var terms: [Tensor] = []
        terms.reserveCapacity(modules.count)
        var trunks = ConditioningTrunks()
        for m in modules {
            let tokens = (latentHeight / m.target.latentDownscale) * (latentWidth / m.target.latentDownscale)
            let (h, w) = (images.h / m.imageDownscale, images.w / m.imageDownscale)
            guard h * w == tokens, images.h % m.imageDownscale == 0, images.w % m.imageDownscale == 0 else {
                throw ModelError.invalidInput(
                    name: "control_image",
                    reason: "\(images.h)x\(images.w) gives module \(m.name) \(h)x\(w) tokens, but \(m.target.block) has \(tokens) for a \(latentHeight)x\(latentWidth) latent (\(file))")
            }
            terms.append(m.condition(images, trunks: &trunks))
        }
        return LLLiteConditioning(adapter: self, terms: terms, batch: images.n)
    }
}

/// One conditioning of an LLLite: each module's control-image term, ready to hook a
/// denoiser call. Kept across batches by the periodic refresh.
public struct LLLiteConditioning: Sendable {
    public let adapter: ControlNetLLLite
    let terms: [Tensor]
    /// Control images it was computed from: 1 (shared) or one per frame.
    public let batch: Int

    /// The input hooks of one denoiser call at `multiplier` (sd-scripts' `multiplier`).
    public func hooks(multiplier: Float) -> LinearInputHooks {
        LinearInputHooks(Dictionary(uniqueKeysWithValues: zip(adapter.modules, terms).map { m, t in
            (m.target.name, LLLiteHook(module: m, term: t, multiplier: multiplier) as any LinearInputHook)
        }))
    }
}

/// x → x + m · up(relu(midFromInput(relu(down(x))) + term)), per sample (the term of
/// sample b is term[b], or term[0] when it is shared).
struct LLLiteHook: LinearInputHook {
    let module: LLLiteModule
    let term: Tensor   // [Bc, T, mlp]; item b of a call reads term b % Bc
    let multiplier: Float

    func slicingBatch(_ range: Range<Int>, of batch: Int) -> any LinearInputHook {
        if term.n == 1 || (range.lowerBound % term.n == 0 && range.count % term.n == 0) { return self }
        return LLLiteHook(module: module, term: term.batchItems(range.map { $0 % term.n }), multiplier: multiplier)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let m = module
        let (mlp, inDim) = (m.mlpDim, m.target.inFeatures)
        let tokens = term.shape[1]
        let rows = x.count / inDim
        let batch = rows / tokens
        precondition(rows == batch * tokens && (term.n == 1 || term.n == batch || batch % term.n == 0),
                     "LLLite \(m.name): input \(x.shape) does not match its conditioning \(term.shape)")
        // The element-wise passes stay on this thread: at these sizes (a few hundred KB)
        // waking a second one costs more than it saves.
        var hidden = Tensor(uninitialized: Array(x.shape.dropLast()) + [mlp])
        var mixed = Tensor(uninitialized: hidden.shape)
        var out = Tensor(uninitialized: x.shape)
        let perSample = tokens * mlp
        x.data.withUnsafeBufferPointer { xb in
        hidden.data.withUnsafeMutableBufferPointer { hb in
        mixed.data.withUnsafeMutableBufferPointer { mb in
        out.data.withUnsafeMutableBufferPointer { ob in
            let (x, h, mix, o) = (xb.baseAddress!, hb.baseAddress!, mb.baseAddress!, ob.baseAddress!)
            // h = relu(x · downᵀ + b_down)
            m.down.weight.withUnsafeBufferPointer { w in
                BLAS.sgemm(transB: true, m: rows, n: mlp, k: inDim, a: x, lda: inDim, b: w.baseAddress!, ldb: inDim,
                           c: h, ldc: mlp)
            }
            m.down.bias!.withUnsafeBufferPointer { bias in
                for r in 0..<rows {
                    let row = h + r * mlp
                    for j in 0..<mlp { row[j] = max(row[j] + bias[j], 0) }
                }
            }
            // mix = relu(term + h · midFromInputᵀ)
            term.data.withUnsafeBufferPointer { t in
                for b in 0..<batch {
                    (mix + b * perSample).update(from: t.baseAddress! + (b % term.n) * perSample, count: perSample)
                }
            }
            m.midFromInput.weight.withUnsafeBufferPointer { w in
                BLAS.sgemm(transB: true, m: rows, n: mlp, k: mlp, a: h, lda: mlp, b: w.baseAddress!, ldb: mlp,
                           beta: 1, c: mix, ldc: mlp)
            }
            for i in 0..<(rows * mlp) { mix[i] = max(mix[i], 0) }
            // out = x + multiplier · (mix · upᵀ + b_up)
            withUnsafeTemporaryAllocation(of: Float.self, capacity: inDim) { scaled in
                m.up.bias!.withUnsafeBufferPointer { bias in
                    for j in 0..<inDim { scaled[j] = multiplier * bias[j] }
                }
                let sb = UnsafePointer(scaled.baseAddress!)
                for r in 0..<rows {
                    let (src, dst) = (x + r * inDim, o + r * inDim)
                    for j in 0..<inDim { dst[j] = src[j] + sb[j] }
                }
            }
            m.up.weight.withUnsafeBufferPointer { w in
                BLAS.sgemm(transB: true, m: rows, n: inDim, k: mlp, alpha: multiplier, a: UnsafePointer(mix), lda: mlp,
                           b: w.baseAddress!, ldb: mlp, beta: 1, c: o, ldc: inDim)
            }
        }}}}
        return out
    }
}
