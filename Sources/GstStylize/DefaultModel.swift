import CGStreamer
import CShims
import Foundation

/// Where the element finds its model when `model` is not set. In order, the first folder
/// that exists wins:
///
/// 1. `$STYLIZE_MODEL_DIR` (taken as it is, existing or not);
/// 2. the embedded model of the source tree the plugin was built in: the plugin file
///    lives in `<repo>/.build/release/`, a symlink to `<repo>/.build/<triple>/release/`,
///    so `models/nano` is two levels up from the path as loaded and three from the
///    resolved one;
/// 3. an installed copy, where `scripts/install.sh` puts it: `<prefix>/share/stylize/models/nano`
///    for a plugin in `<prefix>/lib/gstreamer-1.0/`, then `stylize/models/nano` in the
///    XDG data folders, `$XDG_DATA_HOME` (~/.local/share) and each of `$XDG_DATA_DIRS`
///    (/usr/local/share, /usr/share). The installed plugin usually sits in GStreamer's
///    system plugin folder, which says nothing about the prefix the model went to, hence
///    the data folders.
///
/// When none exists, the error should name the place to fix: the source tree's folder
/// when the plugin was built in a SwiftPM package (a checkout without its model), else
/// the first system data folder's (the installer's default).
struct DefaultModel {
    static let installedSubpath = "stylize/models/nano"

    var environment: String?
    /// The plugin file as the dynamic loader opened it (symlinks kept).
    var plugin: URL?
    var userDataDir: String
    var systemDataDirs: [String]

    /// The lookup for this process.
    static var current: DefaultModel {
        let env = ProcessInfo.processInfo.environment["STYLIZE_MODEL_DIR"]
        var system: [String] = []
        if var dirs = g_get_system_data_dirs() {
            while let dir = dirs.pointee {
                system.append(String(cString: dir))
                dirs += 1
            }
        }
        return DefaultModel(environment: env?.isEmpty == false ? env : nil,
                            plugin: stylize_module_path().map { URL(fileURLWithPath: String(cString: $0)) },
                            userDataDir: String(cString: g_get_user_data_dir()),
                            systemDataDirs: system)
    }

    var buildTreeCandidates: [URL] {
        guard let plugin else { return [] }
        return [
            plugin.deletingLastPathComponent().appendingPathComponent("../../models/nano"),
            plugin.resolvingSymlinksInPath().deletingLastPathComponent().appendingPathComponent("../../../models/nano"),
        ].map { $0.standardizedFileURL }
    }

    var installedCandidates: [URL] {
        let besidePlugin = plugin.map {
            $0.deletingLastPathComponent().appendingPathComponent("../../share/\(Self.installedSubpath)")
        }
        let dataDirs = ([userDataDir] + systemDataDirs).filter { !$0.isEmpty }.map {
            URL(fileURLWithPath: $0).appendingPathComponent(Self.installedSubpath)
        }
        return ([besidePlugin].compactMap { $0 } + dataDirs).map { $0.standardizedFileURL }
    }

    func path(isDirectory: (String) -> Bool = DefaultModel.isDirectory) -> String {
        if let environment { return environment }
        let candidates = buildTreeCandidates + installedCandidates
        if let found = candidates.first(where: { isDirectory($0.path) }) { return found.path }
        let inPackage = buildTreeCandidates.first {
            FileManager.default.fileExists(atPath: $0.deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Package.swift").path)
        }
        let installerDefault = systemDataDirs.first.map {
            URL(fileURLWithPath: $0).appendingPathComponent(Self.installedSubpath).standardizedFileURL
        }
        return (inPackage ?? installerDefault ?? candidates.first)?.path ?? "models/nano"
    }

    static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }
}
