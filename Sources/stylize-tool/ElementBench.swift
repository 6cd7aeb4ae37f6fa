import Foundation
import StylizeEngine
import StylizeModels

/// `bench element`: the element's per-frame work without GStreamer — RGBx frames
/// converted to the engine's floats, batched, restyled, converted back.
enum ElementBench {
    static func run(model: String, width: Int, height: Int, batch: Int, frames: Int, refreshInterval: Int) throws {
        let engine = try StylizeEngine(modelPath: model)
        var settings = StylizeSettings()
        settings.prompt = engine.model.config.defaultPrompt
        settings.steps = engine.model.config.steps
        settings.strength = engine.model.config.strength
        settings.refreshInterval = refreshInterval
        try engine.start(settings: settings)
        defer { engine.stop() }
        let stride = width * 4
        // A moving gradient, so similarity skipping (off by default) would not apply anyway.
        func frame(_ i: Int) -> [UInt8] {
            var f = [UInt8](repeating: 255, count: stride * height)
            for y in 0..<height { for x in 0..<width {
                f[y * stride + 4 * x] = UInt8(truncatingIfNeeded: x + i)
                f[y * stride + 4 * x + 1] = UInt8(truncatingIfNeeded: y + 2 * i)
                f[y * stride + 4 * x + 2] = UInt8(truncatingIfNeeded: x + y)
            } }
            return f
        }
        var conversion = 0.0
        var latencies: [Double] = []
        var processed = 0
        var t0 = Date()
        var warm = false
        var warmupBatches = 0
        var index = 0
        var hotPath = (heapGrowth: 0, minorFaults: 0)
        var pool = TensorBufferPool.Statistics()
        while processed < frames {
            let start = StreamStatistics.now()
            var input = Tensor(uninitialized: [batch, height, width, 3])
            var buffers = (0..<batch).map { frame(index + $0) }
            index += batch
            let c0 = StreamStatistics.now()
            input.data.withUnsafeMutableBufferPointer { dst in
                for b in 0..<batch {
                    buffers[b].withUnsafeMutableBufferPointer { src in
                        let planes = FramePlanes(format: .rgbx, width: width, height: height, data: [src.baseAddress!], strides: [stride])
                        ColorConversion.toRGB(planes, into: dst.baseAddress! + b * width * height * 3, rowStride: width * 3)
                    }
                }
            }
            let c1 = StreamStatistics.now()
            let before = HeapProbe.snapshot()
            let poolBefore = TensorBufferPool.statistics
            let out = try engine.process(input, settings: settings)
            let c2 = StreamStatistics.now()
            if warm {
                let d = HeapProbe.snapshot().since(before)
                hotPath = (hotPath.heapGrowth + d.heapGrowth, hotPath.minorFaults + d.minorFaults)
                pool = pool + TensorBufferPool.statistics.since(poolBefore)
            }
            out.data.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    buffers[b].withUnsafeMutableBufferPointer { dst in
                        let planes = FramePlanes(format: .rgbx, width: width, height: height, data: [dst.baseAddress!], strides: [stride])
                        ColorConversion.fromRGB(src.baseAddress! + b * width * height * 3, rowStride: width * 3, into: planes)
                    }
                }
            }
            let end = StreamStatistics.now()
            if !warm {
                // Two batches of warm-up: the first includes the first conditioning, and
                // the second still touches a few fresh pages of the heap top.
                warmupBatches += 1
                warm = warmupBatches == 2
                t0 = Date()
                continue
            }
            conversion += (c1 - c0) + (end - c2)
            latencies += Array(repeating: end - start, count: batch)
            processed += batch
        }
        let wall = Date().timeIntervalSince(t0)
        let stages = engine.stageTimes
        let measuredFrames = Double(stages.frames)
        latencies.sort()
        let perFrame = { (s: Double) in 1000 * s / measuredFrames }
        print("element       \(model), \(width)x\(height), batch \(batch), \(processed) frames")
        print(String(format: "fps           %.1f (%.3f s)", Double(processed) / wall, wall))
        print(String(format: "latency       p50 %.0f ms, p95 %.0f ms (conversion in to conversion out of the frame's batch)",
                     1000 * latencies[latencies.count / 2], 1000 * latencies[min(latencies.count - 1, latencies.count * 95 / 100)]))
        print(String(format: "per frame     conversion %.2f ms, autoencoder encode %.2f ms, U-Net %.2f ms, decode %.2f ms, other %.2f ms",
                     1000 * conversion / Double(processed), perFrame(stages.encode), perFrame(stages.unet),
                     perFrame(stages.decode), perFrame(stages.other)))
        print(String(format: "encoder       %.3f s per conditioning (side thread)", engine.statistics.snapshot().encoderSeconds))
        // The probe is process-wide: with refreshes on, the side thread's encodings count too.
        print("hot path      after warm-up, while engine.process ran (whole process\(refreshInterval > 0 ? ", side thread included" : "")): "
              + "heap grew \(hotPath.heapGrowth) bytes, \(hotPath.minorFaults) minor page faults")
        print("tensor pool   after warm-up: \(pool.reused) buffers reused, \(pool.allocated) allocated (\(pool.allocatedBytes) bytes)")
    }
}
