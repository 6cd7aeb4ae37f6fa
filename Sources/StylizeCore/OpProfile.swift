import Foundation

/// Wall time per kind of operation, for `stylize-tool bench --profile`: the answer to
/// "where does the time go". Sections nest (attention calls sgemm, a conv adds its
/// bias): each section's time is exclusive of the sections opened inside it, so the
/// kinds add up to the profiled total. Off unless a benchmark turns it on; like
/// `FlopCounter` it is only touched from the thread that drives a model.
public enum OpProfile {
    public enum Kind: String, CaseIterable, Sendable {
        case convGemm = "conv im2col+sgemm"
        case convPointwise = "conv 1x1 (sgemm)"
        case convWinograd = "conv 3x3 Winograd transforms"
        case winogradGemm = "conv 3x3 Winograd GEMMs"
        case winogradPasses = "conv 3x3 Winograd per-thread passes"
        case convDirect = "conv direct (narrow)"
        case linear = "linear (sgemm)"
        case attention = "attention (QK, softmax, V)"
        case normalization = "normalization"
    }

    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) static var seconds = [Double](repeating: 0, count: Kind.allCases.count)
    nonisolated(unsafe) static var stack: [(kind: Int, start: UInt64, children: UInt64)] = []

    @inline(__always)
    public static func section<T>(_ kind: Kind, _ body: () throws -> T) rethrows -> T {
        if !enabled { return try body() }
        let index = Kind.allCases.firstIndex(of: kind)!
        stack.append((index, DispatchTime.now().uptimeNanoseconds, 0))
        defer {
            let top = stack.removeLast()
            let elapsed = DispatchTime.now().uptimeNanoseconds - top.start
            seconds[top.kind] += Double(elapsed - min(elapsed, top.children)) / 1e9
            if !stack.isEmpty { stack[stack.count - 1].children += elapsed }
        }
        return try body()
    }

    /// Runs `body` with profiling on; returns seconds per kind (kinds never entered
    /// are left out) and the total.
    public static func measure(_ body: () throws -> Void) rethrows -> (kinds: [(Kind, Double)], total: Double) {
        seconds = [Double](repeating: 0, count: Kind.allCases.count)
        enabled = true
        defer { enabled = false }
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        let total = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        let kinds = Kind.allCases.enumerated().compactMap { i, k in seconds[i] > 0 ? (k, seconds[i]) : nil }
        return (kinds, total)
    }
}
