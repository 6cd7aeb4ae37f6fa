import ArgumentParser
import Foundation
import StylizeEngine
import StylizeModels

struct ContactSheet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "contact-sheet",
        abstract: "One image in every style of a model folder, tiled into one PNG.",
        discussion: """
        The first tile is the input; then one tile per entry of stylize.json's `styles`, in
        order, each made with that style's first prompt (the model's default prompt when the
        folder lists no styles). Tiles run left to right, --columns per row.
        """)

    @Option(help: "Model folder.")
    var model: String
    @Option(help: "Tiles per row.")
    var columns: Int = 4
    @Option(help: "Noise seed.")
    var seed: UInt64 = 0
    @Argument(help: "Input PNG.")
    var input: String
    @Argument(help: "Output PNG.")
    var output: String

    func run() throws {
        try reportingErrors {
            let engine = try StylizeEngine(modelPath: model)
            let image = try PNGCodec.read(path: input)
            var prompts = engine.model.config.styles.compactMap(\.prompts.first)
            if prompts.isEmpty { prompts = [engine.model.config.defaultPrompt] }
            var settings = engine.modelDefaults  // the model's working scale too, as the element
            settings.seed = seed
            settings.refreshInterval = 0
            settings.prompt = prompts[0]
            try engine.start(settings: settings)
            defer { engine.stop() }
            var tiles = [image]
            for prompt in prompts {
                settings.prompt = prompt
                let styled = try StylizeEngine.processWaitingForPrompt(engine, image.tensor, settings: settings)
                tiles.append(RGBImage(tensor: styled))
            }
            try PNGCodec.write(Self.tile(tiles, columns: max(1, columns)), path: output)
            print("wrote \(tiles.count) tiles (input + \(prompts.count) styles) to \(output)")
        }
    }

    static func tile(_ images: [RGBImage], columns: Int) -> RGBImage {
        let (w, h) = (images[0].width, images[0].height)
        let cols = min(columns, images.count), rows = (images.count + cols - 1) / cols
        var pixels = [UInt8](repeating: 255, count: cols * w * rows * h * 3)
        for (i, img) in images.enumerated() {
            let (tx, ty) = (i % cols, i / cols)
            for y in 0..<h { for x in 0..<w { for c in 0..<3 {
                pixels[((ty * h + y) * cols * w + tx * w + x) * 3 + c] = img.pixels[(y * w + x) * 3 + c]
            } } }
        }
        return RGBImage(width: cols * w, height: rows * h, pixels: pixels)
    }
}
