import Foundation

/// A value behind a pthread mutex (NSLock). Used instead of Synchronization.Mutex, which
/// on Linux is a bare futex that ThreadSanitizer cannot see: every access from two
/// threads was reported as a race (scripts/sanitizers.sh), and a real one would drown.
public final class Locked<Value>: @unchecked Sendable {   // every access goes through `lock`
    private let lock = NSLock()
    private var value: Value

    public init(_ value: Value) { self.value = value }

    @inline(__always)
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
