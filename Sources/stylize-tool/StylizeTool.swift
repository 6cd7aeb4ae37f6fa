import ArgumentParser
import Foundation
import StylizeEngine
import StylizeModels

@main
struct StylizeTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stylize-tool",
        abstract: "Run, create and benchmark stylize's model components on the CPU.",
        discussion: """
        Model folders are diffusers component folders: config.json plus *.safetensors
        (one file, or shards with an index.json). Tensors in files are NCHW like diffusers.
        """,
        subcommands: [Run.self, InitRandom.self, InitLLLite.self, Bench.self, Tokenize.self, Stylize.self, ContactSheet.self, Inspect.self, Properties.self])
}

/// Reports a model error as one clear line and exit code 1 (no stack trace).
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as ModelError {
        FileHandle.standardError.write(Data("stylize-tool: error: \(error)\n".utf8))
        throw ExitCode.failure
    } catch let error as PNGCodec.Error {
        FileHandle.standardError.write(Data("stylize-tool: error: \(error)\n".utf8))
        throw ExitCode.failure
    }
}
