/// The `stylize` element's properties: the one table that the GParamSpecs (gst-inspect),
/// the element's settings, the engine's defaults, the relay's options and the README's
/// property table all come from. Adding a property is one case here plus its use.
///
/// The order of the cases is the order of the GObject property ids (1, 2, …) and of
/// gst-inspect's listing.
public enum ElementProperty: Int, CaseIterable, Sendable {
    case model = 1
    case prompt
    case batchSize
    case steps
    case strength
    case seed
    case fixedNoise
    case refreshInterval
    case conditioningServer
    case conditioningModel
    case maxBatchWait
    case similaritySkip
    case threads
    case passthrough
    case control
    case controlStrength
    case controlRefreshInterval
    case temporal
    case workingScale
    case stats

    public var spec: PropertySpec {
        switch self {
        case .model:
            return PropertySpec(
                "model", nick: "Model folder",
                blurb: "Diffusers-style model folder (model_index.json, unet/, vae/, text_encoder/, tokenizer/, "
                    + "scheduler/). Default: $STYLIZE_MODEL_DIR if set, else the embedded model: models/nano beside "
                    + "the plugin's build folder, else an installed one (scripts/install.sh): "
                    + "<prefix>/share/stylize/models/nano for a plugin in <prefix>/lib/gstreamer-1.0, then "
                    + "stylize/models/nano in $XDG_DATA_HOME (~/.local/share) and $XDG_DATA_DIRS (/usr/local/share, "
                    + "/usr/share). Loaded in NULL->READY; changing it while running loads the new folder in the "
                    + "background and switches at a batch boundary",
                kind: .string(default: nil), mutability: .playing,
                readme: ("`$STYLIZE_MODEL_DIR`, else `models/nano` of this tree, else an installed `stylize/models/nano` "
                    + "(see Install)",
                    "any state (a running element loads the new folder in the background and switches at a batch boundary)"))
        case .prompt:
            return PropertySpec(
                "prompt", nick: "Prompt",
                blurb: "Text describing the style. Empty: the model's default prompt. Takes effect at the first batch "
                    + "boundary after its conditioning is ready (a stylize-conditioning element message reports it)",
                kind: .string(default: ""), mutability: .playing,
                readme: ("the model's default prompt",
                         "any state; returns at once, active at the first batch after its encoding"))
        case .batchSize:
            return PropertySpec(
                "batch-size", nick: "Batch size",
                blurb: "Frames processed together. Larger batches raise throughput and add (batch-size - 1) frame "
                    + "durations of latency",
                kind: .uint(1...64, default: 8), mutability: .playing,
                readme: ("", "any state (posts LATENCY)"))
        case .steps:
            return PropertySpec(
                "steps", nick: "Steps",
                blurb: "Denoising steps per frame. Unset: the model's own (stylize.json \"steps\", else 1); reading "
                    + "it then gives the loaded model's value",
                kind: .uint(1...8, default: 1), mutability: .playing, modelDefault: true,
                readme: ("unset: the model's `steps` (stylize.json)", "any state"))
        case .strength:
            return PropertySpec(
                "strength", nick: "Strength",
                blurb: "How far the output may move from the input (0: unchanged, 1: fully regenerated). Unset: the "
                    + "model's own (stylize.json \"strength\", else 0.5); reading it then gives the loaded model's value",
                kind: .float(0...1, default: 0.5), mutability: .playing, modelDefault: true,
                readme: ("unset: the model's `strength` (stylize.json)", "any state"))
        case .seed:
            return PropertySpec(
                "seed", nick: "Seed", blurb: "Seed of the noise generator",
                kind: .uint64(default: 0), mutability: .playing, readme: ("", "any state"))
        case .fixedNoise:
            return PropertySpec(
                "fixed-noise", nick: "Fixed noise", blurb: "Use the same noise for every frame (temporal stability)",
                kind: .bool(default: true), mutability: .playing, readme: ("", "any state"))
        case .refreshInterval:
            return PropertySpec(
                "refresh-interval", nick: "Refresh interval",
                blurb: "Frames between re-encodings of the prompt with a fresh frame, for vision-aware encoders "
                    + "(0: only when the prompt changes)",
                kind: .uint(0...10000, default: 30), mutability: .playing,
                readme: ("frames", "any state"))
        case .conditioningServer:
            return PropertySpec(
                "conditioning-server", nick: "Conditioning server",
                blurb: "Base URL of an inference server speaking the Open Inference Protocol (KServe v2 REST: KServe, "
                    + "Triton, MLServer, OpenVINO Model Server) that runs the text encoder, e.g. http://encoder:8080; "
                    + "\"\" encodes locally. The tokenizer and image processor still run here. While the server is "
                    + "down or answers garbage the last good conditioning stays in use, a warning is posted and the "
                    + "request is retried (pauses 0.5 s to 4 s)",
                kind: .string(default: ""), mutability: .ready,
                readme: ("\"\": the model's own encoder, locally", "NULL / READY (used when the model loads)"))
        case .conditioningModel:
            return PropertySpec(
                "conditioning-model", nick: "Conditioning model",
                blurb: "Model name on the conditioning server (POST /v2/models/NAME/infer). \"\": the model "
                    + "folder's name",
                kind: .string(default: ""), mutability: .ready,
                readme: ("\"\": the model folder's name", "NULL / READY (used when the model loads)"))
        case .maxBatchWait:
            return PropertySpec(
                "max-batch-wait", nick: "Maximum batch wait",
                blurb: "Milliseconds the oldest frame of a partial batch may wait before the batch runs anyway, for "
                    + "live sources (0: off, wait for a full batch)",
                kind: .uint(0...60000, default: 0), mutability: .playing,
                readme: ("milliseconds; 0: off", "any state (posts LATENCY)"))
        case .similaritySkip:
            return PropertySpec(
                "similarity-skip", nick: "Similarity skip",
                blurb: "Reuse the previous output when the mean absolute difference to the last processed input "
                    + "frame (0-1 scale) is below this (0: off)",
                kind: .float(0...1, default: 0), mutability: .playing,
                readme: ("0: off", "any state"))
        case .threads:
            return PropertySpec(
                "threads", nick: "Threads",
                blurb: "CPU threads this element's batches use for the numeric work (0: all cores). Applied in "
                    + "READY->PAUSED; other elements in the process keep their own",
                kind: .uint(0...64, default: 0), mutability: .ready,
                readme: ("0: all cores", "NULL / READY; this element only"))
        case .passthrough:
            return PropertySpec(
                "passthrough", nick: "Passthrough",
                blurb: "Push frames unchanged, without restyling (frames keep their order, batching and latency), "
                    + "to compare with the effect or pause it without relinking",
                kind: .bool(default: false), mutability: .playing,
                readme: ("", "any state; from the next batch"))
        case .control:
            return PropertySpec(
                "control", nick: "Control adapter",
                blurb: "ControlNet-LLLite adapter: a .safetensors path (sd-scripts or diffusers-port names), a name "
                    + "in the model's controlnet_lllite/ folder, or \"\" for none. Unset: the model's own (stylize.json "
                    + "\"control\"), else none. Changing it while running loads the file in the background and "
                    + "switches at a batch boundary; a file that fails to load posts an error and the stream goes on "
                    + "without an adapter",
                kind: .string(default: ""), mutability: .playing, modelDefault: true,
                readme: ("unset: the model's `control` (stylize.json), else none",
                         "any state (loads in the background, switches at a batch boundary)"))
        case .controlStrength:
            return PropertySpec(
                "control-strength", nick: "Control strength",
                blurb: "Multiplier of the control adapter's effect (0: off). Unset: the model's own (stylize.json "
                    + "\"control\".\"multiplier\", else 1)",
                kind: .float(0...2, default: 1), mutability: .playing, modelDefault: true,
                readme: ("unset: the model's `control.multiplier`", "any state"))
        case .controlRefreshInterval:
            return PropertySpec(
                "control-refresh-interval", nick: "Control refresh interval",
                blurb: "Batches between re-computations of the control adapter's conditioning network, from the "
                    + "batch's newest frame (1: every batch, each frame conditioned by its own image). Unset: the "
                    + "model's own (stylize.json \"control\".\"refresh_interval\", else 8)",
                kind: .uint(1...10000, default: 8), mutability: .playing, modelDefault: true,
                readme: ("batches; unset: the model's `control.refresh_interval`", "any state"))
        case .temporal:
            return PropertySpec(
                "temporal", nick: "Temporal adapter",
                blurb: "Run the model's temporal adapter (stylize.json \"temporal\"), when it has one: a "
                    + "ControlNet-LLLite conditioned on the previous output, warped onto each frame by optical flow, "
                    + "which keeps textures from flickering and crawling. Reset at every flush, seek and caps change; "
                    + "false: frames are restyled independently",
                kind: .bool(default: true), mutability: .playing,
                readme: ("used only when the model has a `temporal` adapter", "any state; from the next batch"))
        case .workingScale:
            return PropertySpec(
                "working-scale", nick: "Working scale",
                blurb: "Linear scale of the resolution the model runs at, relative to the frame (1: the frame's own "
                    + "size). Below 1 the result is brought back to the frame's size by the model's affine head or an "
                    + "input-guided filter, which keeps the input's edges; cost falls with the square of the scale. "
                    + "Unset: the model's own (stylize.json \"working\".\"scale\", else 1); the model's max_pixels "
                    + "caps it further",
                kind: .float(0.05...1, default: 1), mutability: .playing, modelDefault: true,
                readme: ("unset: the model's `working.scale` (stylize.json)", "any state"))
        case .stats:
            return PropertySpec(
                "stats", nick: "Statistics",
                blurb: "Stream statistics: fps; latency-p50 and latency-p95 (seconds from a frame entering the "
                    + "element to its push); batch-seconds-p50 and batch-seconds-p95 (a batch's compute time); "
                    + "encoder-seconds (last prompt encoding); frames-out; skipped",
                kind: .structure, mutability: .readOnly,
                readme: ("fps, latency-p50, latency-p95 (chain to push), batch-seconds-p50, batch-seconds-p95 (compute), "
                         + "encoder-seconds, frames-out, skipped", ""))
        }
    }

    /// The property with this GObject name.
    public init?(name: String) {
        guard let p = Self.allCases.first(where: { $0.spec.name == name }) else { return nil }
        self = p
    }

    /// The writable properties (what the relay passes on, what Settings holds).
    public static var writable: [ElementProperty] { allCases.filter { $0.spec.mutability != .readOnly } }
}

/// When a property may change (GST_PARAM_MUTABLE_*).
public enum PropertyMutability: Sendable, Equatable {
    /// In any state, PLAYING included.
    case playing
    /// In NULL and READY only.
    case ready
    case readOnly
}

/// A property's type, range and default.
public enum PropertyKind: Sendable, Equatable {
    /// `default` nil: computed by the element when its class is made (the model folder).
    case string(default: String?)
    case uint(ClosedRange<UInt32>, default: UInt32)
    /// The whole UInt64 range.
    case uint64(default: UInt64)
    case float(ClosedRange<Float>, default: Float)
    case bool(default: Bool)
    /// A read-only GstStructure.
    case structure
}

/// One row of the property table.
public struct PropertySpec: Sendable, Equatable {
    public let name: String
    public let nick: String
    public let blurb: String
    public let kind: PropertyKind
    public let mutability: PropertyMutability
    /// Unset, the property takes the loaded model's value (stylize.json).
    public let modelDefault: Bool
    /// For the README's property table: a note after the range and default, and when the
    /// property may change.
    public let readme: (note: String, when: String)

    init(_ name: String, nick: String, blurb: String, kind: PropertyKind, mutability: PropertyMutability,
         modelDefault: Bool = false, readme: (String, String)) {
        self.name = name
        self.nick = nick
        self.blurb = blurb
        self.kind = kind
        self.mutability = mutability
        self.modelDefault = modelDefault
        self.readme = readme
    }

    public static func == (a: PropertySpec, b: PropertySpec) -> Bool {
        a.name == b.name && a.nick == b.nick && a.blurb == b.blurb && a.kind == b.kind && a.mutability == b.mutability
            && a.modelDefault == b.modelDefault && a.readme == b.readme
    }

    /// The default as a value (nil for the computed model folder and for read-only structures).
    public var defaultValue: PropertyValue? {
        switch kind {
        case .string(let d): return d.map(PropertyValue.string)
        case .uint(_, let d): return .uint(d)
        case .uint64(let d): return .uint64(d)
        case .float(_, let d): return .float(d)
        case .bool(let d): return .bool(d)
        case .structure: return nil
        }
    }

    /// `value` brought into the property's range (GObject validates ranges the same way
    /// for g_object_set; values set through other paths are clamped here too).
    public func clamped(_ value: PropertyValue) -> PropertyValue {
        switch (kind, value) {
        case (.uint(let r, _), .uint(let v)): return .uint(min(r.upperBound, max(r.lowerBound, v)))
        case (.float(let r, let d), .float(let v)): return .float(v.isFinite ? min(r.upperBound, max(r.lowerBound, v)) : d)
        default: return value
        }
    }

    /// Parses a command-line or gst-launch value of this property, checking its range.
    public func parse(_ text: String) throws -> PropertyValue {
        func bad(_ why: String) -> PropertyError { PropertyError(property: name, value: text, reason: why) }
        switch kind {
        case .string: return .string(text)
        case .uint(let r, _):
            guard let v = UInt32(text) else { throw bad("not a whole number") }
            guard r.contains(v) else { throw bad("must be within \(r.lowerBound)-\(r.upperBound)") }
            return .uint(v)
        case .uint64:
            guard let v = UInt64(text) else { throw bad("not a whole number") }
            return .uint64(v)
        case .float(let r, _):
            guard let v = Float(text), v.isFinite else { throw bad("not a number") }
            guard r.contains(v) else { throw bad("must be within \(r.lowerBound.formatted)-\(r.upperBound.formatted)") }
            return .float(v)
        case .bool:
            switch text.lowercased() {
            case "true", "1", "yes": return .bool(true)
            case "false", "0", "no": return .bool(false)
            default: throw bad("not true or false")
            }
        case .structure: throw bad("read-only")
        }
    }
}

/// A property value that is not valid for its property.
public struct PropertyError: Error, CustomStringConvertible, Equatable {
    public let property: String
    public let value: String
    public let reason: String
    public var description: String { "--\(property) \(value): \(reason)" }
}

/// A value of one property.
public enum PropertyValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case uint(UInt32)
    case uint64(UInt64)
    case float(Float)
    case bool(Bool)

    /// As gst-launch and gst_util_set_object_arg read it.
    public var description: String {
        switch self {
        case .string(let s): return s
        case .uint(let v): return String(v)
        case .uint64(let v): return String(v)
        case .float(let v): return v.formatted
        case .bool(let v): return v ? "true" : "false"
        }
    }
}

extension Float {
    /// "0.5", "1", "0": the shortest text that reads back as the same value.
    var formatted: String { self == rounded() && abs(self) < 1e7 ? String(Int(self)) : "\(self)" }
}
