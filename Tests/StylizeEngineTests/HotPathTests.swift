import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport

/// The per-frame path must not allocate from the OS once warm: processing more batches
/// neither grows the allocator's heap nor faults in fresh pages (HeapProbe).
final class HotPathTests: XCTestCase {
    func testEmbeddedModelProcessesBatchesWithoutHeapGrowthOrPageFaultsAfterWarmUp() throws {
        let nano = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("models/nano").path
        let engine = try StylizeEngine(modelPath: nano)
        var settings = StylizeSettings()
        settings.prompt = engine.model.config.defaultPrompt
        // The periodic vision refresh runs on the side thread, off the hot path; the probe
        // is process-wide, so it is kept quiet here.
        settings.refreshInterval = 0
        try engine.start(settings: settings)
        defer { engine.stop() }
        let frames = TinyModelFolder.frames(4, 256, 256)
        for _ in 0..<2 { _ = try engine.process(frames, settings: settings) }  // warm-up
        let before = HeapProbe.snapshot()
        for _ in 0..<4 { _ = try engine.process(frames, settings: settings) }
        let delta = HeapProbe.snapshot().since(before)
        XCTAssertEqual(delta.heapGrowth, 0, "the heap grew on the hot path")
        // A handful of faults can come from the runtime (thread stacks, XCTest); fresh
        // activation buffers would be hundreds per batch (256² × 16 channels = 1 MB each).
        XCTAssertLessThan(delta.minorFaults, 16, "fresh pages touched on the hot path")
    }
}
