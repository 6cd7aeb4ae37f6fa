import Foundation
import XCTest
import StylizeEngine
import StylizeModels
import StylizeTestSupport
import CMallocCounter

/// The per-frame path must not allocate once warm: every tensor and scratch buffer comes
/// from TensorBufferPool, and processing more batches neither grows the allocator's heap
/// nor faults in fresh pages (HeapProbe).
final class HotPathTests: XCTestCase {
    private let nano = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("models/nano").path

    /// contact-sheet switches prompts on one engine; each tile must be what a fresh engine
    /// started with that prompt gives (a fast encoder once made tiles lag a style behind).
    func testSwitchingPromptsGivesEachPromptsOwnOutput() throws {
        let frames = TinyModelFolder.frames(1, 64, 64)
        let shared = try StylizeEngine(modelPath: nano)
        let prompts = shared.model.config.styles.compactMap(\.prompts.first)
        XCTAssertGreaterThanOrEqual(prompts.count, 3)
        var settings = StylizeSettings()
        settings.prompt = prompts[0]
        try shared.start(settings: settings)
        defer { shared.stop() }
        for prompt in prompts {
            settings.prompt = prompt
            let switched = try StylizeEngine.processWaitingForPrompt(shared, frames, settings: settings)
            let fresh = try StylizeEngine(modelPath: nano)
            try fresh.start(settings: settings)
            let alone = try StylizeEngine.processWaitingForPrompt(fresh, frames, settings: settings)
            fresh.stop()
            XCTAssertLessThan(switched.maxAbsDifference(alone), 1e-4, "'\(prompt)' after a switch")
        }
    }

    func testEmbeddedModelProcessesBatchesWithoutHeapGrowthOrPageFaultsAfterWarmUp() throws {
        try assertHotPathAllocatesNothing(control: nil)
    }

    /// With a ControlNet-LLLite on the down blocks (mlp_dim 32), refreshed every other
    /// batch and every batch: the refreshes inside the measured batches reuse their buffers too.
    func testHotPathWithControlAdapterAllocatesNothingAfterWarmUp() throws {
        let model = try StylizeModel(path: nano)
        let file = NSTemporaryDirectory() + "hotpath-lllite-\(getpid()).safetensors"
        defer { try? FileManager.default.removeItem(atPath: file) }
        try ControlNetLLLite.randomWeights(denoiser: model.denoiser, imageDownscale: model.codec.downscale, blocks: .down,
                                           condEmbDim: 32, mlpDim: 32, seed: 5).write(to: file)
        try assertHotPathAllocatesNothing(control: file, refreshInterval: 2)
        try assertHotPathAllocatesNothing(control: file, refreshInterval: 1)
    }

    /// With a temporal adapter (a random one on nano's down blocks): each batch's flows,
    /// warps and per-frame conditioning reuse their buffers.
    func testHotPathWithTheTemporalAdapterAllocatesNothingAfterWarmUp() throws {
        let folder = NSTemporaryDirectory() + "hotpath-temporal-\(getpid())"
        let fm = FileManager.default
        try? fm.removeItem(atPath: folder)
        try fm.createDirectory(atPath: folder + "/controlnet_lllite", withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: folder) }
        for entry in try fm.contentsOfDirectory(atPath: nano) where entry != "controlnet_lllite" {
            try fm.createSymbolicLink(atPath: folder + "/" + entry, withDestinationPath: nano + "/" + entry)
        }
        try fm.removeItem(atPath: folder + "/stylize.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: nano + "/stylize.json"))) as! [String: Any]
        json["temporal"] = ["weights": "controlnet_lllite/hotpath.safetensors", "blend": 0.5]
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: folder + "/stylize.json"))
        let model = try StylizeModel(path: nano)
        try ControlNetLLLite.randomWeights(denoiser: model.denoiser, imageDownscale: model.codec.downscale, blocks: .down,
                                           condEmbDim: 32, mlpDim: 32, seed: 6).write(to: folder + "/controlnet_lllite/hotpath.safetensors")
        XCTAssertNotNil(try StylizeModel(path: folder).config.temporal)
        try assertHotPathAllocatesNothing(control: nil, model: folder)
    }

    /// 640×480 at half the working resolution: the area downscale, the guided filter and
    /// the full-size colour maps draw from the pool too.
    func testHotPathAt640x480WithAReducedWorkingResolutionAllocatesNothing() throws {
        try assertHotPathAllocatesNothing(control: nil, workingScale: 0.5, height: 480, width: 640, batch: 2)
    }

    private func assertHotPathAllocatesNothing(control: String?, model: String? = nil, refreshInterval: Int = 8, workingScale: Float = 1,
                                               height: Int = 256, width: Int = 256, batch: Int = 4,
                                               file: StaticString = #filePath, line: UInt = #line) throws {
        // Under ASan/TSan the sanitizer's allocator replaces malloc and the counter is
        // compiled out (scripts/sanitizers.sh); in a normal build it must be active.
        if stylize_malloc_counter_sanitized() == 1 {
            throw XCTSkip("built with a sanitizer: malloc is the sanitizer's, not the counting one")
        }
        let engine = try StylizeEngine(modelPath: model ?? nano)
        var settings = StylizeSettings()
        settings.prompt = engine.model.config.defaultPrompt
        // The periodic vision refresh runs on the side thread, off the hot path; the probe
        // is process-wide, so it is kept quiet here.
        settings.refreshInterval = 0
        settings.control = control ?? ""
        settings.controlRefreshInterval = refreshInterval
        settings.workingScale = workingScale
        let events = Locked<[ControlEvent]>([])
        engine.onControlEvent = { e in events.withLock { $0.append(e) } }
        try engine.start(settings: settings)
        defer { engine.stop() }
        let frames = TinyModelFolder.frames(batch, height, width)
        // Warm-up: with a temporal adapter the first batch has no previous output, so only
        // the later ones run the flows and the blend; three give the steady state two of them.
        for _ in 0..<3 { _ = try engine.process(frames, settings: settings) }
        XCTAssertEqual(stylize_malloc_counter_active(), 1, "malloc is not the counting one; the counts below would be empty", file: file, line: line)
        stylize_malloc_counter_reset_largest()
        let mallocBefore = stylize_malloc_counter_read()
        let before = HeapProbe.snapshot()
        let poolBefore = TensorBufferPool.statistics
        for _ in 0..<4 { _ = try engine.process(frames, settings: settings) }
        if let control {
            XCTAssertEqual(events.withLock { $0 }, [.activated(path: control, frame: 0)], file: file, line: line)
        }
        let delta = HeapProbe.snapshot().since(before)
        let mallocs = stylize_malloc_counter_read()
        print("hot path \(width)x\(height) at scale \(workingScale)\(control == nil ? "" : " with LLLite, refresh \(refreshInterval)")\(engine.model.config.temporal == nil ? "" : " with the temporal adapter"): \(mallocs.calls - mallocBefore.calls) malloc calls, \(mallocs.bytes - mallocBefore.bytes) bytes, largest \(mallocs.largest) over \(4 * batch) frames, \(delta.minorFaults) minor faults")
        // What is left are Swift object headers, shape arrays and Dispatch work items
        // (measured: about 600 calls per frame, none over 2 KB); nano's smallest
        // activation is 64 KB, so any tensor-sized malloc shows here.
        XCTAssertLessThan(mallocs.largest, 16 << 10, "a malloc of \(mallocs.largest) bytes on the hot path", file: file, line: line)
        let pool = TensorBufferPool.statistics.since(poolBefore)
        // Every activation and scratch buffer of a batch was needed, at the same size, by
        // the batch before: none may be malloc'd again.
        XCTAssertEqual(pool.allocated, 0, "\(pool.allocatedBytes) bytes of tensors allocated on the hot path", file: file, line: line)
        XCTAssertGreaterThan(pool.reused, 4 * 50, "the hot path does not draw from the pool", file: file, line: line)
        // Less than one activation buffer: the Dispatch workers that run whole batch lanes
        // (BatchLanes) make the small mallocs of a network run (shape arrays, closures) in
        // their own glibc arenas, and one of those arenas takes a page or two from the
        // system now and then (seen: 4–8 KB over four batches in 1 run of 6). A buffer
        // malloc'd per batch would add at least 64 KB every batch.
        XCTAssertLessThan(delta.heapGrowth, 64 << 10, "the heap grew on the hot path", file: file, line: line)
        // The count is process-wide: the runtime and other threads of the test process
        // (thread stacks, XCTest, Dispatch workers started or retired meanwhile) add a few
        // dozen in a full-suite run (up to 37 seen); one fresh activation buffer would add
        // hundreds (256² × 16 channels = 1 MB = 256 pages), every batch.
        XCTAssertLessThan(delta.minorFaults, 64, "fresh pages touched on the hot path", file: file, line: line)
    }
}
