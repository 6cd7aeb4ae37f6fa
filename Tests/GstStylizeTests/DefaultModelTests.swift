import Foundation
import XCTest
@testable import GstStylize

/// The default `model` lookup: $STYLIZE_MODEL_DIR, the source tree, then installed copies.
final class DefaultModelTests: XCTestCase {
    private func lookup(plugin: String, environment: String? = nil) -> DefaultModel {
        DefaultModel(environment: environment, plugin: URL(fileURLWithPath: plugin),
                     userDataDir: "/home/u/.local/share", systemDataDirs: ["/usr/local/share/", "/usr/share/"])
    }

    func testOrderEnvironmentThenBuildTreeThenInstalled() {
        let l = lookup(plugin: "/usr/local/lib/gstreamer-1.0/libgststylize.so")
        XCTAssertEqual(l.installedCandidates.map(\.path), [
            "/usr/local/share/stylize/models/nano",       // <prefix>/share beside <prefix>/lib/gstreamer-1.0
            "/home/u/.local/share/stylize/models/nano",
            "/usr/local/share/stylize/models/nano",
            "/usr/share/stylize/models/nano",
        ])
        XCTAssertEqual(l.buildTreeCandidates.first?.path, "/usr/local/models/nano")

        let everything: (String) -> Bool = { _ in true }
        XCTAssertEqual(lookup(plugin: "/x/lib/gstreamer-1.0/libgststylize.so", environment: "/env/model").path(isDirectory: everything),
                       "/env/model")
        XCTAssertEqual(lookup(plugin: "/repo/.build/release/libgststylize.so").path(isDirectory: everything), "/repo/models/nano")
        let onlyInstalled: (String) -> Bool = { $0 == "/usr/share/stylize/models/nano" }
        XCTAssertEqual(lookup(plugin: "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgststylize.so").path(isDirectory: onlyInstalled),
                       "/usr/share/stylize/models/nano")
        let onlyUser: (String) -> Bool = { $0 == "/home/u/.local/share/stylize/models/nano" }
        XCTAssertEqual(lookup(plugin: "/home/u/.local/share/gstreamer-1.0/plugins/libgststylize.so").path(isDirectory: onlyUser),
                       "/home/u/.local/share/stylize/models/nano")
    }

    /// With nothing installed, the error names where the installer would have put it.
    func testNothingFoundNamesTheInstallersDefault() {
        let l = lookup(plugin: "/usr/lib/x86_64-linux-gnu/gstreamer-1.0/libgststylize.so")
        XCTAssertEqual(l.path(isDirectory: { _ in false }), "/usr/local/share/stylize/models/nano")
    }
}
