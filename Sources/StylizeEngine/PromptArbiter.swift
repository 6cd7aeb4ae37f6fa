/// Decides when a batch's copy of the settings may set the prompt.
///
/// Prompts reach an engine two ways: `setPrompt` (the element's `prompt` property, which
/// the relay sets) and the `prompt` of the settings every `process` call carries (apps
/// and stylize-tool, which never call `setPrompt`). The settings are a copy taken before
/// the call, so a `setPrompt` landing between the copy and the call would be undone by
/// re-applying the copy: the stream would settle on a prompt older than the last one set.
/// The copy is taken after the previous batch, so it is trusted only when no `setPrompt`
/// arrived since that batch; otherwise the next quiet batch applies it.
struct PromptArbiter {
    private var explicitCount = 0
    private var countAtLastBatch = 0

    mutating func explicitlySet() { explicitCount += 1 }

    /// The engine (re)started with its settings' prompt: later batches compare with this.
    mutating func started() { countAtLastBatch = explicitCount }

    /// Whether this batch's settings prompt may be applied (called once per batch).
    mutating func batchMayApplySettings() -> Bool {
        defer { countAtLastBatch = explicitCount }
        return explicitCount == countAtLastBatch
    }
}
