import Foundation

/// What a finished child process left.
public struct ProcessResult {
    public var status: Int32
    public var exitedNormally: Bool
    public var stdout: String
    public var stderr: String

    /// Both streams, for failure messages.
    public var output: String { stdout + (stderr.isEmpty ? "" : "\n[stderr]\n" + stderr) }
}

/// Runs `executable` and waits for it; terminated when it runs past `timeout` seconds.
/// `environment` is the child's whole environment (nil: this process's).
public func runProcess(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                       currentDirectory: String? = nil, timeout: TimeInterval = 60) throws -> ProcessResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    if let currentDirectory { p.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Drain both pipes while the child runs (a full pipe would block it).
    let collected = Collected()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { collected.out = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { collected.err = err.fileHandleForReading.readDataToEndOfFile() }
    let deadline = Date(timeIntervalSinceNow: timeout)
    while p.isRunning && Date() < deadline { usleep(10_000) }
    if p.isRunning { p.terminate() }
    p.waitUntilExit()
    group.wait()
    return ProcessResult(status: p.terminationStatus, exitedNormally: p.terminationReason == .exit,
                         stdout: String(decoding: collected.out, as: UTF8.self),
                         stderr: String(decoding: collected.err, as: UTF8.self))
}

/// A child's two output streams, filled by the threads that drain them.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var _out = Data(), _err = Data()

    var out: Data {
        get { lock.withLock { _out } }
        set { lock.withLock { _out = newValue } }
    }

    var err: Data {
        get { lock.withLock { _err } }
        set { lock.withLock { _err = newValue } }
    }
}
