import CGStreamer
import Foundation
import GstStylize
import StylizeEngine
import StylizeModels

/// `bench element`: the `stylize` element itself, linked into this process, in
/// `videotestsrc ! RGBx caps ! stylize ! fakesink sync=false`: what users run through
/// gst-launch, measured from the end of the second batch (warm-up) to the last frame.
enum ElementBench {
    static func run(model: String, width: Int, height: Int, batch: Int, frames: Int, refreshInterval: Int,
                    threads: Int?, control: String? = nil, controlRefreshInterval: Int? = nil,
                    properties: [String] = []) throws {
        // Three batches: two queued behind one running is the most the element holds, so
        // every buffer the hot path needs has been drawn once by then.
        let warmup = 3 * batch
        let total = warmup + (frames + batch - 1) / batch * batch
        let pipeline = try InProcessPipeline(
            "videotestsrc num-buffers=\(total) pattern=ball ! video/x-raw,format=RGBx,width=\(width),height=\(height),framerate=30/1 "
            + "! stylize name=stylize model=\"\(model)\" batch-size=\(batch) refresh-interval=\(refreshInterval)"
            + (threads.map { " threads=\($0)" } ?? "")
            + (control.map { " control=\"\($0)\"" } ?? "")
            + (controlRefreshInterval.map { " control-refresh-interval=\($0)" } ?? "")
            + properties.map { " " + $0 }.joined()
            + " ! fakesink name=sink sync=false")
        // The element's engine, for its per-stage times (the loader the plugin installed, wrapped).
        let made = EngineCapture()
        let load = StreamEngineFactory.make
        StreamEngineFactory.make = { source in
            let e = try load(source)
            made.engine = e as? StylizeEngine
            return e
        }
        defer { StreamEngineFactory.make = load }

        var t0 = 0.0, t1 = 0.0
        var heapBefore = HeapProbe.snapshot(), heap = HeapProbe.snapshot().since(HeapProbe.snapshot())
        var poolBefore = TensorBufferPool.statistics, pool = TensorBufferPool.Statistics()
        var stagesBefore = Stylizer.StageTimes()
        let count = try pipeline.run { i in
            if i == warmup - 1 {
                t0 = StreamStatistics.now()
                stagesBefore = made.engine?.stageTimes ?? .init()
                heapBefore = HeapProbe.snapshot()
                poolBefore = TensorBufferPool.statistics
            } else if i == total - 1 {
                t1 = StreamStatistics.now()
                heap = HeapProbe.snapshot().since(heapBefore)
                pool = TensorBufferPool.statistics.since(poolBefore)
            }
        }
        guard count == total, let engine = made.engine else {
            throw ModelError.invalidInput(name: "bench element", reason: "\(count) of \(total) frames came out")
        }
        let measured = total - warmup
        let wall = t1 - t0
        let now = engine.stageTimes
        let perFrame = { (s: Double) in 1000 * s / Double(now.frames - stagesBefore.frames) }
        let stats = engine.statistics.snapshot()
        print("element       \(model), \(width)x\(height), batch \(batch), \(measured) frames through "
              + "videotestsrc ! stylize ! fakesink (in process)")
        if !properties.isEmpty { print("properties    \(properties.joined(separator: " "))") }
        if let control {
            print("control       \(control), conditioning refreshed every \(controlRefreshInterval.map(String.init) ?? "(model default)") batches")
        }
        print(String(format: "fps           %.1f (%.3f s)", Double(measured) / wall, wall))
        print(String(format: "latency       p50 %.0f ms, p95 %.0f ms (chain to push); batch compute p50 %.0f ms",
                     1000 * stats.latencyP50, 1000 * stats.latencyP95, 1000 * stats.batchSecondsP50))
        print(String(format: "per frame     autoencoder encode %.2f ms, U-Net %.2f ms, decode %.2f ms, other %.2f ms",
                     perFrame(now.encode - stagesBefore.encode), perFrame(now.unet - stagesBefore.unet),
                     perFrame(now.decode - stagesBefore.decode), perFrame(now.other - stagesBefore.other)))
        print(String(format: "encoder       %.3f s per conditioning (side thread)", stats.encoderSeconds))
        print("hot path      after warm-up, whole process (GStreamer threads\(refreshInterval > 0 ? " and the side thread" : "") included): "
              + "heap grew \(heap.heapGrowth) bytes, \(heap.minorFaults) minor page faults")
        print("tensor pool   after warm-up: \(pool.reused) buffers reused, \(pool.allocated) allocated (\(pool.allocatedBytes) bytes)")
    }
}

private final class EngineCapture: @unchecked Sendable {
    var engine: StylizeEngine?
}
