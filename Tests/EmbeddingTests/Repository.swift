import Foundation
import StylizeTestSupport

/// Paths and environments the embedding and install tests share.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The embedded default model.
    static let model = root + "/models/nano"

    /// The build folder (.build/release, resolved): the test bundle is built beside
    /// libgststylize.so and the stylize-embed-example binary.
    static var buildDirectory: String {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent().path
    }

    /// This process's environment for a child run the way a developer runs the examples:
    /// GST_PLUGIN_PATH = the build folder, no model override, a private registry.
    static func developerEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["GST_PLUGIN_PATH"] = buildDirectory
        env.removeValue(forKey: "GST_PLUGIN_PATH_1_0")
        env.removeValue(forKey: "STYLIZE_MODEL_DIR")
        env["GST_REGISTRY"] = NSTemporaryDirectory() + "stylize-embedding-registry-\(getpid()).bin"
        return env
    }

    static func temporaryDirectory(_ name: String) throws -> String {
        let dir = NSTemporaryDirectory() + "stylize-\(name)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs a shell command line (pkg-config substitutions, the install script).
    static func shell(_ command: String, environment: [String: String]? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
        try runProcess("/bin/bash", ["-c", command], environment: environment, currentDirectory: root, timeout: timeout)
    }

    /// The JSON object an example prints on stdout.
    static func report(_ r: ProcessResult) -> [String: Any]? {
        guard let start = r.stdout.firstIndex(of: "{"), let end = r.stdout.lastIndex(of: "}") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout[start...end].utf8))) as? [String: Any]
    }
}
