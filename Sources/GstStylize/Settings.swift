import StylizeProperties

/// The element's property values (the table is ElementProperty).
typealias Settings = ElementSettings

extension ElementSettings {
    /// Every property at its default, `model` at the folder DefaultModel finds.
    static func initial() -> ElementSettings { ElementSettings(defaultModel: defaultModelPath()) }

    /// The default `model` (DefaultModel.swift says where it is looked for).
    static func defaultModelPath() -> String { DefaultModel.current.path() }
}
