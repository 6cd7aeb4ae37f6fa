import ArgumentParser
import StylizeProperties

/// `stylize-tool properties`: the element's property table, as the README shows it.
struct Properties: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the stylize element's properties (the README's Markdown table).")

    func run() {
        print(PropertyTableMarkdown.render())
    }
}
