import ArgumentParser
import StylizeProperties

/// The `stylize` element's writable properties as command-line options: names, help,
/// ranges and defaults all come from the element's property table (ElementProperty), and
/// an option left out leaves the property at the element's own default (which, for
/// `steps` and `strength`, is the model's). All may change while streaming except
/// `threads` and the conditioning server's two options, which apply when the model loads;
/// the relay changes `prompt` through its control endpoint.
public struct StylizeOptions: ParsableArguments {
    @Option(help: Self.help(.model), completion: .directory)
    public var model: String?

    @Option(help: Self.help(.prompt, "Change it while streaming with POST /prompt."))
    public var prompt: String = ""

    @Option(help: Self.help(.batchSize)) var batchSize: String?
    @Option(help: Self.help(.maxBatchWait)) var maxBatchWait: String?
    @Option(help: Self.help(.steps)) var steps: String?
    @Option(help: Self.help(.strength)) var strength: String?
    @Option(help: Self.help(.seed)) var seed: String?
    @Flag(inversion: .prefixedNo, help: Self.help(.fixedNoise)) var fixedNoise: Bool?
    @Option(help: Self.help(.similaritySkip)) var similaritySkip: String?
    @Option(help: Self.help(.refreshInterval)) var refreshInterval: String?
    @Option(help: Self.help(.conditioningServer)) var conditioningServer: String?
    @Option(help: Self.help(.conditioningModel)) var conditioningModel: String?
    @Option(help: Self.help(.threads)) var threads: String?
    @Flag(inversion: .prefixedNo, help: Self.help(.passthrough)) var passthrough: Bool?
    @Option(help: Self.help(.control)) var control: String?
    @Option(help: Self.help(.controlStrength)) var controlStrength: String?
    @Option(help: Self.help(.controlRefreshInterval)) var controlRefreshInterval: String?
    @Flag(inversion: .prefixedNo, help: Self.help(.temporal)) var temporal: Bool?
    @Option(help: Self.help(.workingScale)) var workingScale: String?

    public init() {}

    /// Each option with the property it sets (the prompt is always passed: the relay's
    /// status reports it).
    private var given: [(ElementProperty, String?)] {
        [(.model, model), (.prompt, prompt), (.batchSize, batchSize), (.steps, steps), (.strength, strength),
         (.seed, seed), (.fixedNoise, fixedNoise.map { $0 ? "true" : "false" }), (.refreshInterval, refreshInterval),
         (.conditioningServer, conditioningServer), (.conditioningModel, conditioningModel),
         (.maxBatchWait, maxBatchWait), (.similaritySkip, similaritySkip), (.threads, threads),
         (.passthrough, passthrough.map { $0 ? "true" : "false" }), (.control, control),
         (.controlStrength, controlStrength), (.controlRefreshInterval, controlRefreshInterval),
         (.temporal, temporal.map { $0 ? "true" : "false" }), (.workingScale, workingScale)]
    }

    /// The element properties these options cover (every writable one; a test checks).
    public static var covered: [ElementProperty] { ((try? parse([]))?.given ?? []).map(\.0) }

    public mutating func validate() throws {
        for (p, value) in given {
            guard let value else { continue }
            do { _ = try p.spec.parse(value) } catch let e as PropertyError { throw ValidationError(e.description) }
        }
    }

    /// Property name and value (as gst-launch writes it) for each option given, in
    /// gst-inspect order.
    public var properties: [(name: String, value: String)] {
        given.sorted { $0.0.rawValue < $1.0.rawValue }.compactMap { p, v in v.map { (p.spec.name, $0) } }
    }

    private static func help(_ p: ElementProperty, _ more: String = "") -> ArgumentHelp {
        let range: String
        switch p.spec.kind {
        case .uint(let r, let d): range = " (\(r.lowerBound)-\(r.upperBound); element default \(d))"
        case .float(let r, let d): range = " (\(r.lowerBound)-\(r.upperBound); element default \(d))"
        default: range = ""
        }
        return ArgumentHelp(p.spec.blurb + range + (more.isEmpty ? "" : ". " + more))
    }
}
