import CGStreamer
import Foundation
import Logging

/// Finding the `stylize` element. SwiftPM puts the plugin (libgststylize.so) next to the
/// relay's executable, so a relay run from .build/release loads the plugin it was built
/// with, without GST_PLUGIN_PATH. When GST_PLUGIN_PATH is set it wins (the registry's
/// `stylize` is used as found there), and without a plugin beside the executable the
/// registry's (an installed plugin) is used.
enum StylizePlugin {
    static let fileName = "libgststylize.so"

    /// Folders next to the executable: as invoked (.build/release is a symlink) and resolved.
    static func besideExecutable() -> [String] {
        var dirs: [String] = []
        let invoked = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        dirs.append(invoked.standardizedFileURL.path)
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            dirs.append(URL(fileURLWithPath: exe).deletingLastPathComponent().standardizedFileURL.path)
        }
        var seen = Set<String>()
        return dirs.filter { seen.insert($0).inserted }
    }

    /// Makes sure the `stylize` factory is registered; returns the plugin file in use.
    static func register(logger: Logger) throws -> String {
        let env = ProcessInfo.processInfo.environment
        let pathSet = [env["GST_PLUGIN_PATH"], env["GST_PLUGIN_PATH_1_0"]].contains { !($0 ?? "").isEmpty }
        let candidates = besideExecutable().map { $0 + "/" + fileName }
        if !pathSet, let file = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) {
            var error: UnsafeMutablePointer<GError>?
            if let plugin = gst_plugin_load_file(file, &error) {
                gst_object_unref(UnsafeMutableRawPointer(plugin))
                return file
            }
            logger.warning("could not load \(file): \(takeErrorMessage(error) ?? "unknown error"); trying the registry")
        }
        guard let factory = gst_element_factory_find("stylize") else {
            throw RelayError.stylizeNotFound(searched: candidates + (pathSet ? ["GST_PLUGIN_PATH"] : []))
        }
        defer { gst_object_unref(UnsafeMutableRawPointer(factory)) }
        guard let plugin = gst_plugin_feature_get_plugin(factory) else { return "the registry" }
        defer { gst_object_unref(UnsafeMutableRawPointer(plugin)) }
        return gst_plugin_get_filename(plugin).map { String(cString: $0) } ?? "the registry"
    }
}
